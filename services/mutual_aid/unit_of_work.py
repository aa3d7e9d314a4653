"""The mutual-aid unit of work: its repositories, each handed ``track`` so that every plan,
enrolment, claim, backstop request and the fund's ledger it loads or adds has its events
published on commit, once.

A use case after which claims may be payable (an approval, a contribution, a grant) calls
:meth:`MutualAidUnitOfWork.wake_payouts`: its commit then NOTIFYs :data:`PAYOUTS_CHANNEL`, and
the payout worker, LISTENing in whichever process runs it (``--role worker`` apart from the API),
settles at once instead of at its next poll. The notification is part of the transaction, so it
is delivered only if the change commits.
"""

from __future__ import annotations

from services.mutual_aid.claims_repository import Claims
from services.mutual_aid.ledger_repository import BackstopRequests, Fund, Payments
from services.mutual_aid.repository import Enrolments, Members, Plans
from shared.uow import UnitOfWork

# NOTIFY channel, after the schema's name, on which a committed change wakes the payout worker.
PAYOUTS_CHANNEL = "_payouts"


def payouts_channel(schema: str) -> str:
    return f"{schema}{PAYOUTS_CHANNEL}"


class MutualAidUnitOfWork(UnitOfWork):
    plans: Plans
    members: Members
    enrolments: Enrolments
    claims: Claims
    fund: Fund
    payments: Payments
    backstop: BackstopRequests
    _payouts_due: bool = False

    def on_enter(self) -> None:
        self._payouts_due = False
        self.plans = Plans(self.conn, self.track)
        self.members = Members(self.conn)
        self.enrolments = Enrolments(self.conn, self.track)
        self.claims = Claims(self.conn, self.track)
        self.fund = Fund(self.conn, self.track)
        self.payments = Payments(self.conn)
        self.backstop = BackstopRequests(self.conn, self.track)

    def wake_payouts(self) -> None:
        """Claims may be payable once this commits: tell the payout worker at commit."""
        self._payouts_due = True

    async def commit(self) -> None:
        if self._payouts_due:
            await self.conn.execute("SELECT pg_notify(current_schema() || $1, '')", PAYOUTS_CHANNEL)
            self._payouts_due = False
        await super().commit()
