"""The mutual-aid unit of work: its repositories, each handed ``track`` so that every plan,
enrolment, claim, backstop request and the fund's ledger it loads or adds has its events
published on commit, once."""

from __future__ import annotations

from services.mutual_aid.claims_repository import Claims
from services.mutual_aid.ledger_repository import BackstopRequests, Fund, Payments
from services.mutual_aid.repository import Enrolments, Members, Plans
from shared.uow import UnitOfWork


class MutualAidUnitOfWork(UnitOfWork):
    plans: Plans
    members: Members
    enrolments: Enrolments
    claims: Claims
    fund: Fund
    payments: Payments
    backstop: BackstopRequests

    def on_enter(self) -> None:
        self.plans = Plans(self.conn, self.track)
        self.members = Members(self.conn)
        self.enrolments = Enrolments(self.conn, self.track)
        self.claims = Claims(self.conn, self.track)
        self.fund = Fund(self.conn, self.track)
        self.payments = Payments(self.conn)
        self.backstop = BackstopRequests(self.conn, self.track)
