"""Use cases of the mutual-aid service: one function per command or followed event, each in one
unit of work, so a change and the events it causes commit together.

Lock order, the same in every use case so none can deadlock: the fund (``open_ledger``), then
backstop requests, enrolments, members, claims. Payouts and backstop requests are in ``payouts``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date

import asyncpg

from services.mutual_aid import commands as c
from services.mutual_aid.backstop import BackstopRequest, open_request_for
from services.mutual_aid.benefits import YearToDate
from services.mutual_aid.claims import Claim, ClaimState
from services.mutual_aid.eligibility import EligibilityView, MemberStanding
from services.mutual_aid.enrolment import Coverage, Enrolment
from services.mutual_aid.errors import DuplicateEntry, InvalidTransition
from services.mutual_aid.intake import ClaimIntake, Submitter, calculate_claim_benefit
from services.mutual_aid.ledger import JournalEntry
from services.mutual_aid.ledger_repository import (
    approval_entry,
    contribution_entry,
    grant_entry,
)
from services.mutual_aid.money import Fen
from services.mutual_aid.plans import Plan, plan_in_force
from services.mutual_aid.repository import MemberCoverage
from services.mutual_aid.unit_of_work import MutualAidUnitOfWork
from shared.errors import Conflict, DomainError
from shared.events import membership as m


@contextmanager
def unique(field: str, code: str, message: str) -> Iterator[None]:
    """A unique constraint lost to a concurrent request is a conflict, not a server error."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(field, code, message) from exc


# Plans -----------------------------------------------------------------------------------------


async def draft_plan(cmd: c.DraftPlan, uow: MutualAidUnitOfWork) -> Plan:
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


async def publish_plan(cmd: c.PublishPlan, uow: MutualAidUnitOfWork) -> Plan:
    async with uow:
        plan = await uow.plans.get(cmd.plan_id, lock=True)
        plan.publish(uow.clock.today())
        await uow.plans.save_status(plan)
        await uow.commit()
    return plan


# Enrolment and contributions -------------------------------------------------------------------


async def enrol_unit(cmd: c.EnrolUnit, uow: MutualAidUnitOfWork) -> Enrolment:
    on = cmd.enrolled_on or uow.clock.today()
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
        await uow.commit()
    return enrolment


async def cover_staff(cmd: c.CoverStaff, uow: MutualAidUnitOfWork) -> Enrolment:
    on = cmd.on or uow.clock.today()
    async with uow:
        enrolment = await uow.enrolments.get(cmd.enrolment_id, lock=True)
        if on > enrolment.plan_ends_on:
            raise DomainError("on", "after_plan_end", "the plan year has ended by then")
        standings = await uow.members.standings(cmd.member_ids)
        since = await uow.enrolments.continuous_since(cmd.member_ids, enrolment.plan_starts_on)
        for member_id in dict.fromkeys(cmd.member_ids):
            enrolment.cover(member_id, on, standings.get(member_id), since.get(member_id))
        await uow.enrolments.save(enrolment)
        await uow.commit()
    return enrolment


async def receive_contribution(cmd: c.RecordContribution, uow: MutualAidUnitOfWork) -> Enrolment:
    today = uow.clock.today()
    received_on = cmd.received_on or today
    if received_on > today:
        raise DomainError("received_on", "in_the_future", "must not be in the future")
    async with uow:
        ledger = await uow.fund.open_ledger()
        enrolment = await uow.enrolments.get(cmd.enrolment_id, lock=True)
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
        uow.wake_payouts()  # claims awaiting funds may be payable now
        await uow.commit()
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


async def _assess(uow: MutualAidUnitOfWork, claim: Claim) -> None:
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
        at=uow.clock.now(),
    )


async def submit_claim(cmd: c.SubmitClaim, uow: MutualAidUnitOfWork) -> Claim:
    """Take a claim in and run the automatic checks at once: it leaves either under review or
    rejected with coded reasons."""
    submitter = Submitter(kind=cmd.submitted_by.kind, id=cmd.submitted_by.id)
    intake = cmd.to_intake(submitter, uow.clock.today())
    async with uow:
        # The member's row lock serialises their claims: two cannot both pass the invoice check.
        if await uow.members.get(intake.member_id, lock=True) is None:
            raise DomainError(
                "member_id", "unknown_member", "not a union member known to mutual aid"
            )
        claim = Claim.submit(
            await uow.claims.next_id(intake.submitted_on.year), intake, uow.clock.now()
        )
        await _assess(uow, claim)
        await uow.claims.add(claim, via=cmd.via)
        await uow.commit()
    return claim


async def resubmit_claim(cmd: c.Resubmit, uow: MutualAidUnitOfWork) -> Claim:
    async with uow:
        first = (await uow.claims.get(cmd.claim_id)).intake
        corrected = None
        if cmd.corrected is not None:
            corrected = cmd.corrected.to_intake(
                first.submitted_by, uow.clock.today(), prefix=("corrected",)
            )
        await uow.members.get(first.member_id, lock=True)
        claim = await uow.claims.get(cmd.claim_id, lock=True)
        claim.resubmit(cmd.by, uow.clock.now(), cmd.documents, corrected)
        await _assess(uow, claim)
        await uow.claims.save(claim, via=cmd.via)
        await uow.commit()
    return claim


async def approve_claim(cmd: c.Officer, uow: MutualAidUnitOfWork) -> Claim:
    return await _approve(cmd, uow, adjustment=None)


async def adjust_claim(cmd: c.Adjust, uow: MutualAidUnitOfWork) -> Claim:
    return await _approve(cmd, uow, adjustment=(cmd.amount_fen, cmd.reason))


async def _approve(
    cmd: c.Officer, uow: MutualAidUnitOfWork, adjustment: tuple[Fen, str] | None
) -> Claim:
    """Approve (or approve a lower amount, with a reason). The benefit is valued again with the
    member's year as it is now, and the fund owes it from this moment (claims payable). The fund's
    lock is taken first, so approval order is the order in which claims are paid."""
    claim_id = cmd.claim_id
    action = "approve" if adjustment is None else "adjust"
    async with uow:
        ledger = await uow.fund.open_ledger()
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
        now, today = uow.clock.now(), uow.clock.today()
        if adjustment is None:
            claim.approve(cmd.officer, now, revalued)
        else:
            claim.assessment = revalued
            claim.adjust(cmd.officer, now, *adjustment)
        amount = claim.approved_amount or 0
        if amount > 0:  # a zero benefit moves no money, so it has no entry
            ledger.post(
                JournalEntry.benefit_approved(approval_entry(claim_id), amount, today, claim_id)
            )
        seq = await uow.claims.next_approval_seq()
        await uow.claims.save(claim, via=cmd.via, approval_seq=seq)
        await uow.fund.save(ledger)
        uow.wake_payouts()
        await uow.commit()
    return claim


async def reject_claim(cmd: c.Reject, uow: MutualAidUnitOfWork) -> Claim:
    async with uow:
        claim = await uow.claims.get(cmd.claim_id, lock=True)
        claim.reject(cmd.officer, uow.clock.now(), cmd.reason_code, cmd.reason_text)
        await uow.claims.save(claim, via=cmd.via)
        await uow.commit()
    return claim


async def return_claim(cmd: c.ReturnForDocuments, uow: MutualAidUnitOfWork) -> Claim:
    async with uow:
        claim = await uow.claims.get(cmd.claim_id, lock=True)
        claim.return_for_documents(cmd.officer, uow.clock.now(), cmd.missing_documents, cmd.note)
        await uow.claims.save(claim, via=cmd.via)
        await uow.commit()
    return claim


# The backstop grant ----------------------------------------------------------------------------


async def grant_backstop(
    cmd: c.RecordGrant, uow: MutualAidUnitOfWork
) -> tuple[BackstopRequest, bool]:
    """Journal finance's grant against its request; (the request, whether this was a repeat).

    Finance may send the same grant again (it never saw our answer): the same reference for the
    same request and amount is acknowledged, not journaled twice. Anything else that does not
    match an open request is refused. Paying the waiting claims is the payout worker's job.
    """
    request_id = cmd.request_id
    if cmd.granted_on > uow.clock.today():
        raise DomainError("granted_on", "in_the_future", "must not be in the future")
    async with uow:
        ledger = await uow.fund.open_ledger()
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
        await uow.backstop.save(request, recorded_by=cmd.recorded_by)
        uow.wake_payouts()  # the claims it was asked for are paid by the payout worker
        await uow.commit()
    return request, False


# Membership events -----------------------------------------------------------------------------


async def standing_changed(e: m.MemberEvent, uow: MutualAidUnitOfWork) -> None:
    """Keep the eligibility view; a member who leaves stops being covered from that day."""
    async with uow:
        if isinstance(e, m.MemberLeft):
            # Lock order: enrolments before the member.
            for enrolment in await uow.enrolments.covering(e.member_id, lock=True):
                enrolment.end_coverage(e.member_id, e.left_on, f"left the union: {e.reason}")
                await uow.enrolments.save(enrolment)
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
