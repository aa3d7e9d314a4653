"""Every WeChat errcode path against the simulator: what the service records, what it tells other
services, and that it retries only what may succeed and never without bound."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.events.notifications import RecipientUnreachable
from tests.integration.notifications.harness import (
    Ids,
    Service,
    WeChat,
    eventually,
    notifications,
    template_id,
)
from tests.integration.notifications.test_notifications_delivery import approved
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
CONFIGURATION_ERRORS = "notifications_configuration_errors_total"


async def test_system_busy_is_retried_with_back_off_until_it_goes_through(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    await wechat.faults(system_errors=2)
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(event, "delivered", "sent")
    assert (delivery["attempts"], delivery["errcode"]) == (3, 0)
    assert (await wechat.stats())["rejected"] == {"-1": 2}
    assert len(await wechat.messages(openid)) == 1


async def test_an_unknown_errcode_is_retried_a_bounded_number_of_times(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    await wechat.faults(openid_errors=[{"openid": openid, "errcode": 45047}])
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(event, "failed")
    assert (delivery["reason"], delivery["errcode"], delivery["attempts"]) == (
        "retries_exhausted",
        45047,
        3,
    )
    assert (await wechat.stats())["rejected"] == {"45047": 3}


@pytest.mark.parametrize("errcode", [43004, 43101, 40003, 48002])
async def test_a_member_wechat_cannot_reach_gets_no_channel_and_other_services_hear_once(
    errcode: int, db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    if errcode == 43004:
        await wechat.follower(openid, state="unfollowed")  # unfollowed while we were not told
    elif errcode != 40003:  # 40003: an openid the account has never seen
        await wechat.follower(openid)
        await wechat.faults(openid_errors=[{"openid": openid, "errcode": errcode}])
    async with notifications(db, servers, namespace, wechat) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(event, "undeliverable")
        assert (delivery["reason"], delivery["errcode"], delivery["attempts"]) == (
            "no_channel",
            errcode,
            1,
        )
        binding = (await svc.api.get(f"/members/{member}/binding")).json()
        assert (binding["reachable"], binding["unreachable_errcode"]) == (False, errcode)
        [told] = await eventually(lambda: svc.outbox(RecipientUnreachable.type))
        assert (told["member_id"], told["errcode"]) == (member, errcode)

        [later] = await svc.publish(approved(member, ids.next("claim")))
        assert (await svc.settled(later, "undeliverable"))["attempts"] == 0
        assert len(await svc.outbox(RecipientUnreachable.type)) == 1
    assert sum((await wechat.stats())["rejected"].values()) == 1  # the second was not tried


async def configuration_errors(svc: Service) -> float:
    metrics = (await svc.raw.get("/metrics/")).text
    [line] = [m for m in metrics.splitlines() if m.startswith(f"{CONFIGURATION_ERRORS} ")]
    return float(line.split()[-1])


async def test_a_message_wechat_refuses_is_a_configuration_error_and_not_retried(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    claim_status = template_id("claim_status")
    keys = dict.fromkeys(["first", "keyword1", "keyword2", "keyword3", "remark"])
    # The account's template allows 5 characters where the rule writes more: 47003.
    await wechat.admin(
        "POST", "/templates", json={"template_id": claim_status, "keys": keys | {"keyword3": 5}}
    )
    async with notifications(db, servers, namespace, wechat) as svc:
        errors_before = await configuration_errors(svc)
        await svc.bind(member, openid)
        [too_long] = await svc.publish(approved(member, ids.next("claim")))
        first = await svc.settled(too_long, "invalid")
        await wechat.admin("DELETE", f"/templates/{claim_status}")  # 40037 from now on
        [unknown] = await svc.publish(approved(member, ids.next("claim")))
        second = await svc.settled(unknown, "invalid")
        listed = await svc.deliveries(status="invalid")
        errors_after = await configuration_errors(svc)
    assert (first["errcode"], second["errcode"]) == (47003, 40037)
    assert "keyword3" in first["errmsg"]
    assert all(d["configuration_error"] and d["attempts"] == 1 for d in (first, second))
    assert {d["id"] for d in listed} == {first["id"], second["id"]}
    assert errors_after - errors_before == 2  # the metric operators alert on
    assert (await wechat.stats())["rejected"] == {"40037": 1, "47003": 1}


async def test_an_invalid_token_is_replaced_once_and_the_send_retried(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    async with notifications(db, servers, namespace, wechat) as svc:
        # What a token from another account, or one WeChat revoked, looks like: 40014.
        await svc.pool.execute(
            "INSERT INTO wechat_tokens (appid, access_token, expires_at)"
            " VALUES ($1, 'not-a-token', $2)",
            (await wechat.admin("GET", "/config"))["appid"],
            wechat.clock.now() + timedelta(hours=1),
        )
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))
        delivery = await svc.settled(event, "delivered", "sent")
    stats = await wechat.stats()
    assert (delivery["attempts"], stats["rejected"], stats["token_fetches"]) == (1, {"40014": 1}, 1)


async def test_a_token_refused_even_when_fresh_pauses_sending_instead_of_looping(
    db: ScratchDatabase, servers: Servers, namespace: str, wechat: WeChat, ids: Ids
) -> None:
    member, openid = ids.next("m"), ids.next("o")
    await wechat.follower(openid)
    await wechat.faults(persistent_40001=True)  # what a wrong secret looks like on old accounts
    async with notifications(db, servers, namespace, wechat, config_error_pause_seconds=1.0) as svc:
        await svc.bind(member, openid)
        [event] = await svc.publish(approved(member, ids.next("claim")))

        async def paused() -> dict | None:  # type: ignore[type-arg]
            state = (await svc.api.get("/sending")).json()
            return state if state["pause_reason"] == "configuration" else None

        state = await eventually(paused)
        assert state["pause_errcode"] == 40001
        waiting = await svc.delivery_of(event)
        assert waiting is not None and waiting["status"] == "pending"
        assert waiting["errcode"] == 40001 and waiting["attempts"] == 0
        await asyncio.sleep(3)  # a few pauses
        stats = await wechat.stats()
        tries = stats["rejected"]["40001"] // 2  # each try: send, one refresh, send once more
        # Bounded: one token fetch per try (after the first token), one try per pause.
        assert stats["token_fetches"] == 1 + tries and 1 <= tries <= 4, stats
        await wechat.faults(persistent_40001=False)
        delivery = await svc.settled(event, "delivered", "sent")
    assert delivery["attempts"] == 1
    assert len(await wechat.messages(openid)) == 1
