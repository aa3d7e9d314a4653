"""Use cases of union funds: the tax bureau's remittance batches and finance's subsidies."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from services.membership import commands as c
from services.membership.funds_repository import Remittances, Subsidies
from services.membership.funds_views import SubsidyView, subsidy_view
from services.membership.handlers import MembershipUnitOfWork, today
from services.membership.remittances import (
    BatchReport,
    RecordError,
    check_subsidised,
    match,
    read_batch,
    subsidy_period,
)
from shared.errors import Conflict


class FundsUnitOfWork(MembershipUnitOfWork):
    remittances: Remittances
    subsidies: Subsidies

    def on_enter(self) -> None:
        super().on_enter()
        self.remittances = Remittances(self.conn)
        self.subsidies = Subsidies(self.conn)


def batch_digest(records: list[Any]) -> str:
    # Key order does not make another batch; anything else does. The standard library's encoder,
    # not orjson: a record may carry an integer beyond 64 bits, which read_record then refuses.
    canonical = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit_remittances(
    cmd: c.RemittanceBatch, uow: FundsUnitOfWork, *, submitted_by: str
) -> tuple[dict[str, Any], bool]:
    """Record a batch once; (its report, whether it was a resend answered from the first time).

    New records are matched to standing unions by credit code and each causes its event, in the
    same transaction. Records already recorded (overlapping batches) are reported as duplicates
    and cause nothing.
    """
    digest = batch_digest(cmd.records)
    read = read_batch(cmd.records, today=today())
    report = BatchReport(cmd.batch_id, len(cmd.records))
    report.reject(read.errors)
    async with uow:
        earlier = await uow.remittances.start_batch(cmd.batch_id, digest, submitted_by)
        if earlier is not None:
            if earlier["digest"] != digest:
                raise Conflict(
                    "batch_id",
                    "batch_id_reused",
                    "already used for a batch with other records; send them under a new batch_id",
                )
            result: dict[str, Any] = earlier["result"]
            return result, True
        holders = await uow.remittances.holders({r.credit_code for _, r in read.fresh})
        inserted = await uow.remittances.add_new(
            cmd.batch_id, [(r, holders.get(r.credit_code)) for _, r in read.fresh]
        )
        already = await uow.remittances.recorded(
            [r.identity for _, r in read.fresh if r.identity not in inserted]
        )
        ids: dict[int, int | None] = {}
        for index, r in read.fresh:
            if r.identity in inserted:
                ids[index] = inserted[r.identity]
                report.recorded(index, r, inserted[r.identity], holders.get(r.credit_code))
                uow.publish(match(r, holders))
                continue
            stored = already[r.identity]
            ids[index] = stored["id"]
            if r.same_payment(stored["payroll_base_fen"], stored["amount_fen"], stored["paid_on"]):
                report.duplicate(index, r, stored["id"])
            else:
                # Tax re-sent a record id with other figures: a correction needs a person to
                # decide, so the first figures stand and the record is refused, not overwritten.
                message = f"already recorded (remittance {stored['id']}) with other amounts or date"
                report.reject([RecordError(index, "record_id", "recorded_otherwise", message)])
        for index, r, first in read.repeats:
            if report.outcomes[first]["outcome"] == "rejected":
                # The first of the pair was refused, so this one is refused for the same reason.
                message = f"repeats refused record {first}"
                report.reject([RecordError(index, "record_id", "repeats_refused_record", message)])
            else:
                report.duplicate(index, r, ids[first])
        result = report.as_dict()
        await uow.remittances.finish_batch(cmd.batch_id, result)
        await uow.commit()
    return result, False


async def record_subsidy(
    cmd: c.RecordSubsidy, uow: FundsUnitOfWork, *, recorded_by: str
) -> tuple[SubsidyView, bool]:
    """Record finance's subsidy once; (the subsidy, whether the reference was recorded before).

    Finance may send a subsidy again (it never saw our answer): the same reference with the same
    figures is acknowledged; with other figures it is refused, as a correction needs a person.
    """
    period = subsidy_period(cmd.period)
    async with uow:
        union = await uow.organisations.get(cmd.union_id, field="union_id")
        stored = await uow.subsidies.get(cmd.reference)
        if stored is None:
            check_subsidised(union, period)
            added = await uow.subsidies.add(
                reference=cmd.reference,
                union_id=cmd.union_id,
                amount_fen=cmd.amount_fen,
                period=period,
                members_covered=cmd.members_covered,
                recorded_by=recorded_by,
            )
            if added is not None:
                await uow.commit()
                return subsidy_view(added), False
            stored = await uow.subsidies.get(cmd.reference)  # a concurrent resend won
            assert stored is not None
        sent = (cmd.union_id, cmd.amount_fen, str(period), cmd.members_covered)
        kept = tuple(stored[k] for k in ("union_id", "amount_fen", "period", "members_covered"))
        if sent != kept:
            raise Conflict(
                "reference",
                "reference_reused",
                "already recorded for another subsidy",
                existing=subsidy_view(stored),
            )
        return subsidy_view(stored), True
