"""From a domain event to a WeChat message: rendering from the service's own read models, exactly
one message per event and recipient, no binding, preferences, follow events, and reports."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from services.notifications.domain import mask_openid
from shared.events.mutual_aid import ClaimApproved, ClaimSubmitted
from shared.events.notifications import MessageDelivered, RecipientUnreachable
from tests.integration.notifications.harness import (
    Ids,
    WeChat,
    eventually,
    joined,
    notifications,
    template_id,
    union,
)
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def approved(member_id: str, claim_id: str, amount_fen: int = 123_456) -> ClaimApproved:
    return ClaimApproved(
        claim_id=claim_id,
        member_id=member_id,
        amount_fen=amount_fen,
        computed_amount_fen=amount_fen,
        approved_by="officer-1",
        approved_at=NOW,
    )


def submitted(member_id: str, claim_id: str) -> ClaimSubmitted:
    return ClaimSubmitted(
        claim_id=claim_id,
        member_id=member_id,
        unit_id="unit-1",
        admission_date=NOW.date(),
        discharge_date=NOW.date(),
        hospital="亳州市人民医院",
        total_expense_fen=880_000,
        submitted_by_kind="member",
        submitted_by=member_id,
        submitted_at=NOW,
    )


async def test_a_join_sends_the_welcome_rendered_from_the_read_models_in_the_joins_trace(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid, union_id = ids.next("m"), ids.next("o"), ids.next("u")
    trace_id = secrets.token_hex(16)
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.publish(union(union_id, "亳州卷烟厂工会"))
        # Unions and members are on different partitions: in life the union comes first.
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT true FROM organisations WHERE organisation_id = $1", union_id
            )
        )
        [event] = await svc.publish(
            joined(member, "李娜", union_id, [union_id]),
            trace_headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
        # The member binds WeChat just after joining: the welcome waited for it.
        waiting = await svc.settled(event, "awaiting_binding")
        assert (waiting["reason"], waiting["attempts"]) == ("no_binding", 0)
        bound = await svc.bind(member, openid)
        assert bound["openid"] == mask_openid(openid) != openid
        delivery = await svc.settled(event, "delivered")
        [message] = await wechat.messages(openid)
        assert message["template_id"] == template_id("member_welcome")
        assert message["data"]["first"]["value"] == "李娜，欢迎加入亳州卷烟厂工会！"
        assert message["data"]["keyword3"]["value"] == joined(member).card_number
        assert message["client_msg_id"] == delivery["client_msg_id"]
        assert message["traceparent"].split("-")[1] == trace_id
        assert (delivery["msgid"], delivery["report_status"]) == (message["msgid"], "success")
        assert delivery["attempts"] == 1 and delivery["openid"] == mask_openid(openid)
        told = await eventually(lambda: svc.outbox(MessageDelivered.type))
        assert told == [
            {
                "member_id": member,
                "cause_event_id": event.id,
                "rule": "member_joined_welcome",
                "category": "membership",
                "template_id": template_id("member_welcome"),
                "msgid": message["msgid"],
            }
        ]


async def test_a_redelivered_event_sends_one_message(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")), copies=3)
        await svc.settled(event, "delivered")
        await wechat.flush()
        stats = await wechat.stats()
    assert len(await wechat.messages(openid)) == 1
    assert stats["template_sends_accepted"] == 1 and stats["rejected_total"] == 0


async def test_without_a_binding_a_message_waits_a_while_then_is_undeliverable_for_good(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member = ids.next("m")
    async with notifications(db, servers, namespace, wechat, binding_grace_seconds=600) as svc:
        [event] = await svc.publish(approved(member, ids.next("claim")))
        await svc.settled(event, "awaiting_binding")
        await wechat.advance(601)
        delivery = await svc.settled(event, "undeliverable")
        assert (delivery["reason"], delivery["attempts"], delivery["msgid"]) == (
            "no_binding",
            0,
            None,
        )
        # Binding later does not resurrect it: it was recorded, not queued.
        await wechat.follower("o-late")
        await svc.bind(member, "o-late")
        [later] = await svc.publish(approved(member, ids.next("claim")))
        await svc.settled(later, "delivered", "sent")
        assert (await svc.delivery_of(event) or {})["status"] == "undeliverable"
    assert len(await wechat.messages("o-late")) == 1


async def test_opting_out_skips_a_category_but_not_a_mandatory_rule(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid, claim = ids.next("m"), ids.next("o"), ids.next("claim")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        answer = await svc.api.put(
            f"/members/{member}/preferences", json={"opted_out": ["mutual_aid"]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["receives"]["mutual_aid"] is False
        assert "claim_approved" in answer.json()["always_sent"]
        refused = await svc.api.put(f"/members/{member}/preferences", json={"opted_out": ["x"]})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "opted_out[0]"
        assert refused.json()["errors"][0]["code"] == "enum"
        received, decided = await svc.publish(submitted(member, claim), approved(member, claim))
        skipped = await svc.settled(received, "skipped")
        assert skipped["reason"] == "opted_out"
        await svc.settled(decided, "delivered", "sent")
    [message] = await wechat.messages(openid)
    assert message["data"]["keyword3"]["value"] == "核定互助金1234.56元"


async def test_unfollowing_closes_the_channel_once_and_following_again_reopens_it(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        await wechat.admin("POST", f"/users/{openid}/unfollow")
        await wechat.flush()
        binding = (await svc.api.get(f"/members/{member}/binding")).json()
        assert (binding["reachable"], binding["unreachable_errcode"]) == (False, 43004)
        [unreachable] = await eventually(lambda: svc.outbox(RecipientUnreachable.type))
        assert unreachable["member_id"] == member
        assert unreachable["openid_masked"] == mask_openid(openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(event, "undeliverable")
        assert (delivery["reason"], delivery["errcode"]) == ("no_channel", 43004)

        await wechat.admin("POST", f"/users/{openid}/follow")
        await wechat.flush()
        assert (await svc.api.get(f"/members/{member}/binding")).json()["reachable"] is True
        [again] = await svc.publish(approved(member, ids.next("claim")))
        await svc.settled(again, "delivered", "sent")
        assert len(await svc.outbox(RecipientUnreachable.type)) == 1
    assert (await wechat.stats())["rejected_total"] == 0  # WeChat was never written in vain


async def test_a_user_block_report_closes_the_channel_so_later_messages_are_not_sent(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        await wechat.admin("POST", f"/users/{openid}/block")  # WeChat tells nobody at once
        [first] = await svc.publish(approved(member, ids.next("claim")))
        await svc.settled(first, "sent", "delivered", "failed")
        await wechat.flush()  # the report: "failed:user block"

        failed = await svc.settled(first, "failed")
        assert failed["report_status"] == "failed:user block"
        binding = (await svc.api.get(f"/members/{member}/binding")).json()
        assert (binding["reachable"], binding["unreachable_errcode"]) == (False, 43101)
        [unreachable] = await eventually(lambda: svc.outbox(RecipientUnreachable.type))
        assert unreachable["member_id"] == member
        [later] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(later, "undeliverable")
        assert (delivery["reason"], delivery["errcode"]) == ("no_channel", 43101)
    assert (await wechat.stats())["template_sends_accepted"] == 1  # the blocked one only
