"""Use cases of the union funds service: the tax bureau's remittance batches, finance's subsidies,
and the view of unions kept from membership's events. One function per command or followed
event, each ``(cmd, uow)`` in one unit of work, the day read from ``uow.clock``.
"""

from __future__ import annotations

from typing import Any

from services.union_funds import commands as c
from services.union_funds.remittances import (
    BatchReport,
    RecordError,
    batch_digest,
    match,
    read_batch,
)
from services.union_funds.subsidies import check_subsidised, subsidy_period
from services.union_funds.unions import apply_membership_event
from services.union_funds.unit_of_work import UnionFundsUnitOfWork
from services.union_funds.views import SubsidyView, subsidy_view
from shared.clock import Clock
from shared.consumer import Handler
from shared.errors import Conflict
from shared.events import membership as m
from shared.events.base import EventData
from shared.events.union_funds import SubsidyGranted
from shared.uow import following

# ----- the tax bureau's remittances -----


async def submit_remittances(
    cmd: c.RemittanceBatch, uow: UnionFundsUnitOfWork
) -> tuple[dict[str, Any], bool]:
    """Record a batch once; (its report, whether it was a resend answered from the first time).

    New records are matched to the unions standing today by credit code and each causes its
    event, in the same transaction. Records already recorded (overlapping batches) are reported
    as duplicates and cause nothing.
    """
    today = uow.clock.today()
    digest = batch_digest(cmd.records)
    read = read_batch(cmd.records, today=today)
    report = BatchReport(cmd.batch_id, len(cmd.records))
    report.reject(read.errors)
    async with uow:
        earlier = await uow.remittances.start_batch(cmd.batch_id, digest, cmd.submitted_by)
        if earlier is not None:
            if earlier["digest"] != digest:
                raise Conflict(
                    "batch_id",
                    "batch_id_reused",
                    "already used for a batch with other records; send them under a new batch_id",
                )
            result: dict[str, Any] = earlier["result"]
            return result, True
        holders = await uow.unions.holders({r.credit_code for _, r in read.fresh}, today)
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


# ----- city finance's subsidies -----


async def record_subsidy(
    cmd: c.RecordSubsidy, uow: UnionFundsUnitOfWork
) -> tuple[SubsidyView, bool]:
    """Record finance's subsidy once; (the subsidy, whether the reference was recorded before).

    Finance may send a subsidy again (it never saw our answer): the same reference with the same
    figures is acknowledged; with other figures it is refused, as a correction needs a person.
    """
    period = subsidy_period(cmd.period)
    async with uow:
        union = await uow.unions.get(cmd.union_id, field="union_id")
        stored = await uow.subsidies.get(cmd.reference)
        if stored is None:
            check_subsidised(union, period)
            added = await uow.subsidies.add(
                reference=cmd.reference,
                union_id=cmd.union_id,
                amount_fen=cmd.amount_fen,
                period=period,
                members_covered=cmd.members_covered,
                recorded_by=cmd.recorded_by,
            )
            if added is not None:
                uow.publish(
                    SubsidyGranted(
                        reference=cmd.reference,
                        union_id=cmd.union_id,
                        period=str(period),
                        amount_fen=cmd.amount_fen,
                        members_covered=cmd.members_covered,
                    )
                )
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


# ----- membership's organisation events -----


async def organisation_event(event: EventData, uow: UnionFundsUnitOfWork) -> None:
    """Apply an organisation event to the view of unions. An event older than what the row shows
    (a replay after the runbook seeded the view) changes nothing."""
    assert isinstance(event, m.OrganisationEvent) and uow.cause is not None
    at = uow.cause.time
    async with uow:
        known = await uow.unions.known(event.organisation_id)
        if known is None or at >= known[1]:
            view = apply_membership_event(known[0] if known else None, event)
            if view is not None:
                await uow.unions.save(view, at)
        await uow.commit()


def membership_handlers(topic: str, clock: Clock) -> dict[str, Handler]:
    """What union funds follows on ``membership.events``: organisations, never members."""
    follow = following(UnionFundsUnitOfWork, topic, clock, organisation_event)
    return dict.fromkeys(
        (
            m.OrganisationEstablished.type,
            m.OrganisationChanged.type,
            m.OrganisationDissolved.type,
        ),
        follow,
    )
