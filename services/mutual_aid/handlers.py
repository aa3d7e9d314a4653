"""Use cases of the mutual-aid service: one function per command or followed event, each in one
unit of work, so a change and the events it causes commit together.

Lock order, the same in every use case so none can deadlock: the fund (``open_ledger``), then
backstop requests, enrolments, members, claims. Payouts and backstop requests are in ``payouts``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.mutual_aid.backstop import BackstopRequest, open_request_for
from services.mutual_aid.benefits import YearToDate
from services.mutual_aid.claims import Claim, ClaimState
from services.mutual_aid.claims_repository import Claims
from services.mutual_aid.clock import Clock
from services.mutual_aid.commands import DraftPlan, EnrolUnit, RecordContribution, RecordGrant
from services.mutual_aid.eligibility import EligibilityView, MemberStanding
from services.mutual_aid.enrolment import Coverage, Enrolment
from services.mutual_aid.errors import DuplicateEntry, InvalidTransition
from services.mutual_aid.fund_repository import (
    BackstopRequests,
    Fund,
    Payments,
    approval_entry,
    contribution_entry,
    grant_entry,
)
from services.mutual_aid.intake import ClaimIntake, RejectionCode, calculate_claim_benefit
from services.mutual_aid.ledger import JournalEntry
from services.mutual_aid.money import Fen
from services.mutual_aid.plans import Plan, plan_in_force
from services.mutual_aid.repository import Enrolments, MemberCoverage, Members, Plans
from shared.consumer import Batched, Handler, Run
from shared.errors import Conflict, DomainError
from shared.events import membership as m
from shared.events.base import EventData
from shared.events.envelope import Envelope
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
        self.plans = Plans(self.conn)
        self.members = Members(self.conn)
        self.enrolments = Enrolments(self.conn)
        self.claims = Claims(self.conn)
        self.fund = Fund(self.conn)
        self.payments = Payments(self.conn)
        self.backstop = BackstopRequests(self.conn)

    async def commit_aggregates(
        self, *aggregates: Plan | Enrolment | Claim | BackstopRequest
    ) -> None:
        for aggregate in aggregates:
            self.publish(*aggregate.events)
            aggregate.events.clear()
        await self.commit()


@dataclass(frozen=True)
class Context:
    """What use cases need besides their input: the time, and when the fund counts as low."""

    clock: Clock
    low_balance_threshold: Fen


@contextmanager
def unique(field: str, code: str, message: str) -> Iterator[None]:
    """A unique constraint lost to a concurrent request is a conflict, not a server error."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(field, code, message) from exc


# Plans -----------------------------------------------------------------------------------------


async def draft_plan(uow: MutualAidUnitOfWork, cmd: DraftPlan) -> Plan:
    year = cmd.scheme_year
    async with uow:
        version = await uow.plans.next_version(year)
        plan = Plan(
            plan_id=f"plan-{year}-v{version}",
            scheme_year=year,
            version=version,
            effective_from=cmd.effective_from or date(year, 1, 1),
            effective_to=cmd.effective_to or date(year, 12, 31),
            contribution_per_member=cmd.contribution_per_member_fen,
            rules=cmd.rules.to_domain(),
        )
        with unique(
            "scheme_year",
            "drafted_concurrently",
            "another version of this year's plan was drafted meanwhile; send it again",
        ):
            await uow.plans.add(plan)
        await uow.commit()
    return plan


async def publish_plan(uow: MutualAidUnitOfWork, plan_id: str, today: date) -> Plan:
    async with uow:
        plan = await uow.plans.get(plan_id, lock=True)
        plan.publish(today)
        await uow.plans.save_status(plan)
        await uow.commit_aggregates(plan)
    return plan


# Enrolment and contributions -------------------------------------------------------------------


async def enrol_unit(uow: MutualAidUnitOfWork, cmd: EnrolUnit, today: date) -> Enrolment:
    on = cmd.enrolled_on or today
    async with uow:
        plans = await uow.plans.published_of_year(cmd.scheme_year)
        if not plans:
            raise DomainError(
                "scheme_year", "no_published_plan", "no plan of this year is published"
            )
        # Enrolling before the year starts joins the plan that will be in force on its first day.
        plan = plan_in_force(plans, max(on, min(p.effective_from for p in plans)))
        if plan is None:
            raise DomainError(
                "enrolled_on", "no_plan_in_force", "no plan of that year is in force on this day"
            )
        existing = await uow.enrolments.find(cmd.unit_id, cmd.scheme_year)
        if existing is not None:
            raise Conflict(
                "unit_id",
                "already_enrolled",
                "the unit is already enrolled for this year; add staff to that enrolment",
                enrolment_id=existing,
            )
        standings = await uow.members.standings(cmd.staff)
        since = await uow.enrolments.continuous_since(cmd.staff, plan.effective_from)
        enrolment = Enrolment.enrol(
            await uow.enrolments.next_id(cmd.scheme_year),
            cmd.unit_id,
            plan,
            cmd.staff,
            on,
            standings,
            since,
        )
        with unique("unit_id", "already_enrolled", "the unit is already enrolled for this year"):
            await uow.enrolments.add(enrolment)
        await uow.commit_aggregates(enrolment)
    return enrolment


async def cover_staff(
    uow: MutualAidUnitOfWork, enrolment_id: str, member_ids: Sequence[str], on: date
) -> Enrolment:
    async with uow:
        enrolment = await uow.enrolments.get(enrolment_id, lock=True)
        if on > enrolment.plan_ends_on:
            raise DomainError("on", "after_plan_end", "the plan year has ended by then")
        standings = await uow.members.standings(member_ids)
        since = await uow.enrolments.continuous_since(member_ids, enrolment.plan_starts_on)
        for member_id in dict.fromkeys(member_ids):
            enrolment.cover(member_id, on, standings.get(member_id), since.get(member_id))
        await uow.enrolments.save(enrolment)
        await uow.commit_aggregates(enrolment)
    return enrolment


async def receive_contribution(
    uow: MutualAidUnitOfWork, ctx: Context, enrolment_id: str, cmd: RecordContribution
) -> Enrolment:
    received_on = cmd.received_on or ctx.clock.today()
    if received_on > ctx.clock.today():
        raise DomainError("received_on", "in_the_future", "must not be in the future")
    async with uow:
        ledger = await uow.fund.open_ledger(ctx.low_balance_threshold)
        enrolment = await uow.enrolments.get(enrolment_id, lock=True)
        elsewhere = await uow.enrolments.receipt_taken(cmd.receipt_number)
        if elsewhere is not None:
            raise DuplicateEntry(
                "receipt_number",
                "already_recorded",
                "this receipt is already recorded",
                enrolment_id=elsewhere,
            )
        enrolment.receive_contribution(
            cmd.receipt_number, cmd.amount_fen, cmd.payer, received_on, cmd.period
        )
        ledger.post(
            JournalEntry.contribution(
                contribution_entry(cmd.receipt_number),
                cmd.amount_fen,
                received_on,
                cmd.receipt_number,
            )
        )
        with unique("receipt_number", "already_recorded", "this receipt is already recorded"):
            await uow.enrolments.save(enrolment)
            await uow.fund.save(ledger)
        uow.publish(*ledger.events)
        await uow.commit_aggregates(enrolment)
    return enrolment


# Claims ----------------------------------------------------------------------------------------


def best_coverage(found: Sequence[MemberCoverage], intake: ClaimIntake) -> Coverage | None:
    """The member's cover that applies to the claim: one covering the admission day, preferably
    through the claiming unit; failing that the unit's own cover (so a rejection names its
    dates), or None."""

    def rank(c: MemberCoverage) -> tuple[bool, bool]:
        return (not c.coverage.covers(intake.admission_date), c.unit_id != intake.unit_id)

    ranked = sorted(found, key=rank)
    return ranked[0].coverage if ranked else None


async def _assess(uow: MutualAidUnitOfWork, claim: Claim, ctx: Context) -> None:
    intake = claim.intake
    admitted = intake.admission_date
    plan = plan_in_force(await uow.plans.published_on_day(admitted), admitted)
    coverage, ytd = None, YearToDate()
    if plan is not None:
        found = await uow.enrolments.coverages_of(intake.member_id, plan.scheme_year)
        coverage = best_coverage(found, intake)
        ytd = await uow.claims.year_to_date(
            intake.member_id, plan.scheme_year, excluding=claim.claim_id
        )
    claim.assess(
        plan=plan,
        coverage=coverage,
        other_invoices=await uow.claims.invoices_of(intake.member_id, excluding=claim.claim_id),
        year_to_date=ytd,
        at=ctx.clock.now(),
    )


async def submit_claim(
    uow: MutualAidUnitOfWork, ctx: Context, intake: ClaimIntake, via: str
) -> Claim:
    """Take a claim in and run the automatic checks at once: it leaves either under review or
    rejected with coded reasons."""
    async with uow:
        # The member's row lock serialises their claims: two cannot both pass the invoice check.
        if await uow.members.get(intake.member_id, lock=True) is None:
            raise DomainError(
                "member_id", "unknown_member", "not a union member known to mutual aid"
            )
        claim = Claim.submit(
            await uow.claims.next_id(intake.submitted_on.year), intake, ctx.clock.now()
        )
        await _assess(uow, claim, ctx)
        await uow.claims.add(claim, via=via)
        await uow.commit_aggregates(claim)
    return claim


async def resubmit_claim(
    uow: MutualAidUnitOfWork,
    ctx: Context,
    claim_id: str,
    by: str,
    documents: Sequence[str],
    corrected: ClaimIntake | None,
    via: str,
) -> Claim:
    async with uow:
        member_id = (await uow.claims.get(claim_id)).member_id
        await uow.members.get(member_id, lock=True)
        claim = await uow.claims.get(claim_id, lock=True)
        claim.resubmit(by, ctx.clock.now(), documents, corrected)
        await _assess(uow, claim, ctx)
        await uow.claims.save(claim, via=via)
        await uow.commit_aggregates(claim)
    return claim


async def approve_claim(
    uow: MutualAidUnitOfWork,
    ctx: Context,
    claim_id: str,
    officer: str,
    via: str,
    adjustment: tuple[Fen, str] | None = None,
) -> Claim:
    """Approve (or approve a lower amount, with a reason). The benefit is valued again with the
    member's year as it is now, and the fund owes it from this moment (claims payable). The fund's
    lock is taken first, so approval order is the order in which claims are paid."""
    action = "approve" if adjustment is None else "adjust"
    async with uow:
        ledger = await uow.fund.open_ledger(ctx.low_balance_threshold)
        claim = await uow.claims.get(claim_id, lock=True)
        if claim.state is not ClaimState.UNDER_REVIEW or claim.plan_id is None:
            raise InvalidTransition(f"claim {claim_id}", action, claim.state)
        assert claim.scheme_year is not None, "an assessed claim has its plan's year"
        intake = claim.intake
        cover = best_coverage(
            await uow.enrolments.coverages_of(intake.member_id, claim.scheme_year), intake
        )
        if cover is None or not cover.covers(intake.admission_date):
            # The member left (or was removed) after the claim was checked.
            raise Conflict(
                "admission_date",
                "no_longer_covered",
                "not covered any more on the admission day; reject the claim as NOT_COVERED",
            )
        plan = await uow.plans.get(claim.plan_id)
        ytd = await uow.claims.year_to_date(intake.member_id, claim.scheme_year, excluding=claim_id)
        revalued = calculate_claim_benefit(plan.rules, intake, ytd)
        now, today = ctx.clock.now(), ctx.clock.today()
        if adjustment is None:
            claim.approve(officer, now, revalued)
        else:
            claim.assessment = revalued
            claim.adjust(officer, now, *adjustment)
        amount = claim.approved_amount or 0
        if amount > 0:  # a zero benefit moves no money, so it has no entry
            ledger.post(
                JournalEntry.benefit_approved(approval_entry(claim_id), amount, today, claim_id)
            )
        seq = await uow.claims.next_approval_seq()
        await uow.claims.save(claim, via=via, approval_seq=seq)
        await uow.fund.save(ledger)
        uow.publish(*ledger.events)
        await uow.commit_aggregates(claim)
    return claim


async def reject_claim(
    uow: MutualAidUnitOfWork,
    ctx: Context,
    claim_id: str,
    officer: str,
    code: RejectionCode,
    text: str,
    via: str,
) -> Claim:
    async with uow:
        claim = await uow.claims.get(claim_id, lock=True)
        claim.reject(officer, ctx.clock.now(), code, text)
        await uow.claims.save(claim, via=via)
        await uow.commit_aggregates(claim)
    return claim


async def return_claim(
    uow: MutualAidUnitOfWork,
    ctx: Context,
    claim_id: str,
    officer: str,
    missing: Sequence[str],
    note: str,
    via: str,
) -> Claim:
    async with uow:
        claim = await uow.claims.get(claim_id, lock=True)
        claim.return_for_documents(officer, ctx.clock.now(), missing, note)
        await uow.claims.save(claim, via=via)
        await uow.commit_aggregates(claim)
    return claim


# The backstop grant ----------------------------------------------------------------------------


async def grant_backstop(
    uow: MutualAidUnitOfWork, ctx: Context, request_id: str, cmd: RecordGrant, recorded_by: str
) -> tuple[BackstopRequest, bool]:
    """Journal finance's grant against its request; (the request, whether this was a repeat).

    Finance may send the same grant again (it never saw our answer): the same reference for the
    same request and amount is acknowledged, not journaled twice. Anything else that does not
    match an open request is refused. Paying the waiting claims is the payout worker's job.
    """
    if cmd.granted_on > ctx.clock.today():
        raise DomainError("granted_on", "in_the_future", "must not be in the future")
    async with uow:
        ledger = await uow.fund.open_ledger(ctx.low_balance_threshold)
        earlier = await uow.backstop.grant_by_reference(cmd.reference)
        if earlier is not None:
            if (earlier["request_id"], earlier["amount_fen"], earlier["granted_on"]) != (
                request_id,
                cmd.amount_fen,
                cmd.granted_on,
            ):
                raise DuplicateEntry(
                    "reference",
                    "already_recorded",
                    "this reference is already recorded for another grant",
                    request_id=earlier["request_id"],
                )
            request = await uow.backstop.get(request_id)
            assert request is not None
            return request, True
        found = await uow.backstop.get(request_id, lock=True)
        request = open_request_for([found] if found else [], request_id)
        request.grant(request_id, cmd.amount_fen, cmd.reference, cmd.granted_on)
        ledger.post(
            JournalEntry.backstop_grant(
                grant_entry(cmd.reference),
                cmd.amount_fen,
                cmd.granted_on,
                request_id,
                cmd.reference,
            )
        )
        await uow.fund.save(ledger)
        await uow.backstop.save(request, recorded_by=recorded_by)
        uow.publish(*ledger.events)
        await uow.commit_aggregates(request)
    return request, False


# Membership events -----------------------------------------------------------------------------


def membership_handlers(topic: str) -> dict[str, Handler]:
    """Keep the eligibility view; a member who leaves stops being covered from that day."""

    async def standing_changed(conn: asyncpg.Connection, e: EventData, cause: Envelope) -> None:
        assert isinstance(e, m.MemberEvent)
        uow = MutualAidUnitOfWork.joining(conn, topic, cause)
        async with uow:
            if isinstance(e, m.MemberLeft):
                # Lock order: enrolments before the member.
                for enrolment in await uow.enrolments.covering(e.member_id, lock=True):
                    enrolment.end_coverage(e.member_id, e.left_on, f"left the union: {e.reason}")
                    await uow.enrolments.save(enrolment)
                    uow.publish(*enrolment.events)
            known = await uow.members.get(e.member_id, lock=True)
            standing = known.standing if known else MemberStanding(e.member_id)
            EligibilityView({e.member_id: standing}).apply(e)
            union_id = (
                e.union_id
                if isinstance(e, m.MemberJoined)
                else e.to_union_id
                if isinstance(e, m.MemberTransferred)
                else None
            )
            await uow.members.save(standing, union_id)
            await uow.commit()

    async def joined(conn: asyncpg.Connection, events: Run) -> None:
        """A run of joins (a roster's) in two statements: joining opens an active period and
        ends no cover, so nothing but the members is locked or written."""
        joins = [e for e, _ in events if isinstance(e, m.MemberJoined)]
        known = await Members(conn).locked([e.member_id for e in joins])
        view = EligibilityView({k: v.standing for k, v in known.items()})
        for e in joins:
            view.apply(e)
        await Members(conn).save_many([(view.standings[e.member_id], e.union_id) for e in joins])

    return {m.MemberJoined.type: Batched(joined)} | dict.fromkeys(
        (
            m.MemberSuspended.type,
            m.MemberReinstated.type,
            m.MemberLeft.type,
            m.MemberTransferred.type,
        ),
        standing_changed,
    )
