"""The membership service's unit of work: organisations and members, tracked for their events."""

from __future__ import annotations

from services.membership.repository import Members, Organisations
from shared.uow import UnitOfWork


class MembershipUnitOfWork(UnitOfWork):
    organisations: Organisations
    members: Members

    def on_enter(self) -> None:
        self.organisations = Organisations(self.conn, self.track)
        self.members = Members(self.conn, self.track)
