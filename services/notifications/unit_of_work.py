"""The notifications service's unit of work: its repositories, and the rules in force.

Bindings are the service's aggregates: the repository tracks a binding it saves closed, so the
RecipientUnreachable it records goes out with the change. Deliveries, broadcasts and the read
models of members and unions are rows; what their use cases announce (MessageDelivered,
BroadcastCompleted) goes out through ``publish``, a batch's events in one outbox statement.
"""

from __future__ import annotations

import asyncpg

from services.notifications.broadcast_repository import Broadcasts
from services.notifications.live_rules import LiveRules
from services.notifications.repository import (
    Bindings,
    Deliveries,
    MemberDirectory,
    Organisations,
    PreferenceStore,
)
from services.notifications.rules import RuleSet
from shared.clock import Clock
from shared.uow import UnitOfWork


class NotificationsUnitOfWork(UnitOfWork):
    bindings: Bindings
    preferences: PreferenceStore
    deliveries: Deliveries
    members: MemberDirectory
    organisations: Organisations
    broadcasts: Broadcasts

    def __init__(
        self,
        pool: asyncpg.Pool | None,
        topic: str,
        clock: Clock | None = None,
        live_rules: LiveRules | None = None,
    ) -> None:
        super().__init__(pool, topic, clock)
        # rules.yaml as the service runs it: a broadcast takes its template from there.
        self.live_rules = live_rules

    @property
    def rules(self) -> RuleSet:
        assert self.live_rules is not None, "this unit of work was made without the rules"
        return self.live_rules.current()

    def on_enter(self) -> None:
        self.bindings = Bindings(self.conn, self.track)
        self.preferences = PreferenceStore(self.conn)
        self.deliveries = Deliveries(self.conn)
        self.members = MemberDirectory(self.conn)
        self.organisations = Organisations(self.conn)
        self.broadcasts = Broadcasts(self.conn)
