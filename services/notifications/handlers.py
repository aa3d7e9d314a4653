"""Commands and events of the notifications service."""

from __future__ import annotations

import asyncpg

from services.notifications.repository import MemberDirectory
from shared.consumer import Handler
from shared.events import membership as m
from shared.events.base import EventData
from shared.events.envelope import Envelope


async def member_joined(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.MemberJoined)
    await MemberDirectory(conn).joined(
        e.member_id, e.name, e.union_id, e.union_path, e.categories, e.card_number
    )


async def member_changed(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.MemberDetailsChanged)
    await MemberDirectory(conn).update(e.member_id, name=e.name, categories=e.categories)


async def member_transferred(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.MemberTransferred)
    await MemberDirectory(conn).update(e.member_id, union_id=e.to_union_id, union_path=e.union_path)


async def card_issued(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
    assert isinstance(e, m.CardIssued)
    await MemberDirectory(conn).update(e.member_id, card_number=e.card_number)


def status_becomes(status: str) -> Handler:
    async def handle(conn: asyncpg.Connection, e: EventData, _: Envelope) -> None:
        assert isinstance(e, m.MemberEvent)
        await MemberDirectory(conn).update(e.member_id, status=status)

    return handle


MEMBERSHIP: dict[str, Handler] = {
    m.MemberJoined.type: member_joined,
    m.MemberDetailsChanged.type: member_changed,
    m.MemberTransferred.type: member_transferred,
    m.CardIssued.type: card_issued,
    m.MemberSuspended.type: status_becomes("suspended"),
    m.MemberReinstated.type: status_becomes("active"),
    m.MemberLeft.type: status_becomes("left"),
}
