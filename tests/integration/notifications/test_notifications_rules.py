"""rules.yaml changes without a restart: a new rule for an event nobody notified about starts
sending; a broken file is refused whole, logged, and the rules in force stay."""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notifications.main import RULES
from shared.events.mutual_aid import ClaimReturned
from tests.integration.notifications.harness import Ids, WeChat, eventually, notifications
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

RETURNED_RULE = """
  - name: claim_returned
    event: gonghui.mutual_aid.claim.returned
    category: mutual_aid
    mandatory: true
    template: claim_status
    data:
      first: "您的互助保障申请需要补充材料。"
      keyword1: "{claim_id}"
      keyword2: "退回补正"
      keyword3: "缺少：{missing_documents}"
      remark: "{note}"
"""


def returned(member_id: str, claim_id: str) -> ClaimReturned:
    return ClaimReturned(
        claim_id=claim_id,
        member_id=member_id,
        missing_documents=["出院小结", "费用清单"],
        note="请在30日内补交。",
        returned_by="officer-2",
        returned_at=datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
    )


def write(path: Path, text: str, generation: int) -> None:
    path.write_text(text, encoding="utf-8")
    # Editors and checkouts can write twice within the file system's mtime granularity.
    stamp = 1_800_000_000_000_000_000 + generation * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


async def test_rules_change_without_a_restart_and_a_bad_change_is_refused(
    db: ScratchDatabase,
    servers: Servers,
    namespace: str,
    wechat: WeChat,
    ids: Ids,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    rules = tmp_path / "rules.yaml"
    # Whatever version the shipped file is at, this test starts it at 1.
    shipped = re.sub(r"(?m)^version: .*$", "version: 1", RULES.read_text(encoding="utf-8"))
    write(rules, shipped, 1)
    async with notifications(db, servers, namespace, wechat, rules_path=rules) as svc:
        await svc.bind(member, openid)
        before = (await svc.api.get("/rules")).json()
        assert before["version"] == "1" and before["rejected_change"] is None
        [ignored] = await svc.publish(returned(member, ids.next("claim")))

        write(rules, shipped.replace("version: 1", "version: 2") + RETURNED_RULE, 2)

        async def version(wanted: str) -> bool:
            return bool((await svc.api.get("/rules")).json()["version"] == wanted)

        await eventually(lambda: version("2"), 10)
        [event] = await svc.publish(returned(member, ids.next("claim")))
        sent = await svc.settled(event, "delivered", "sent")
        assert sent["rule"] == "claim_returned"

        broken = shipped.replace("version: 1", "version: 3") + RETURNED_RULE.replace(
            "template: claim_status", "template: no_such_template"
        ).replace("{note}", "{no_such_field}")
        with caplog.at_level(logging.ERROR, logger="services.notifications.live_rules"):
            write(rules, broken, 3)

            async def refused() -> dict | None:  # type: ignore[type-arg]
                body = (await svc.api.get("/rules")).json()
                return body if body["rejected_change"] else None

            state = await eventually(refused, 10)
        assert state["version"] == "2"
        problems = state["rejected_change"]["problems"]
        assert any("no_such_template" in p for p in problems)
        assert any("no_such_field" in p for p in problems)
        assert any("refused; version 2 stays in force" in r.getMessage() for r in caplog.records)
        [after] = await svc.publish(returned(member, ids.next("claim")))
        assert (await svc.settled(after, "delivered", "sent"))["rule"] == "claim_returned"
        assert await svc.delivery_of(ignored) is None  # no rule then: nothing to record
    messages = await wechat.messages(openid)
    assert [m["data"]["keyword3"]["value"] for m in messages] == ["缺少：出院小结、费用清单"] * 2
