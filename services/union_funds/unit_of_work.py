"""The union funds service's unit of work: the view of unions, remittances and subsidies."""

from __future__ import annotations

from services.union_funds.repository import Remittances, Subsidies, Unions
from shared.uow import UnitOfWork


class UnionFundsUnitOfWork(UnitOfWork):
    unions: Unions
    remittances: Remittances
    subsidies: Subsidies

    def on_enter(self) -> None:
        self.unions = Unions(self.conn)
        self.remittances = Remittances(self.conn)
        self.subsidies = Subsidies(self.conn)
