"""Use cases of the membership service: one function per command, each in one unit of work."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.membership import commands as c
from services.membership.domain import Conflict, Employer, Member, NotFound, Organisation
from services.membership.identity import normalise_id_number
from services.membership.unit_of_work import MembershipUnitOfWork


async def establish_organisation(cmd: c.EstablishOrganisation, uow: MembershipUnitOfWork) -> str:
    async with uow:
        parent = (
            await uow.organisations.get(cmd.parent_id, field="parent_id") if cmd.parent_id else None
        )
        employer = Employer.of(**cmd.employer.model_dump()) if cmd.employer else None
        if employer is not None:
            holder = await uow.organisations.credit_code_taken(employer.credit_code)
            if holder is not None:
                raise Conflict(
                    "employer.credit_code",
                    "credit_code_taken",
                    f"already the employer of {holder}",
                    existing=holder,
                )
        org = Organisation.establish(
            id=cmd.id or f"org-{uuid.uuid4().hex[:12]}",
            name=cmd.name,
            kind=cmd.kind,
            parent=parent,
            employer=employer,
            founded_on=cmd.founded_on,
            today=uow.clock.today(),
        )
        try:
            async with uow.conn.transaction():  # a savepoint: the transaction survives a refusal
                await uow.organisations.add(org)
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "id", "organisation_exists", f"organisation {org.id} exists", existing=org.id
            ) from None
        await uow.commit()
        return org.id


async def rename_organisation(cmd: c.RenameOrganisation, uow: MembershipUnitOfWork) -> None:
    async with uow:
        org = await uow.organisations.get(cmd.org_id, lock=True)
        org.rename(cmd.name)
        await uow.organisations.save(org)
        await uow.commit()


async def move_organisation(cmd: c.MoveOrganisation, uow: MembershipUnitOfWork) -> None:
    async with uow:
        org = await uow.organisations.get(cmd.org_id, lock=True)
        parent = await uow.organisations.get(cmd.parent_id, field="parent_id")
        org.move_under(parent)
        moved: list[Organisation] = [org]
        by_id = {org.id: org}
        # Descendants come parents first, so each follows a parent that already moved.
        for child in await uow.organisations.descendants(org.id):
            assert child.parent_id is not None
            child.follow_parent(by_id[child.parent_id])
            by_id[child.id] = child
            moved.append(child)
        for each in moved:
            await uow.organisations.save(each)
        await uow.commit()


async def dissolve_organisation(cmd: c.DissolveOrganisation, uow: MembershipUnitOfWork) -> None:
    async with uow:
        org = await uow.organisations.get(cmd.org_id, lock=True)
        org.dissolve(
            on=cmd.dissolved_on,
            today=uow.clock.today(),
            active_members=await uow.members.not_left_in(cmd.org_id),
            child_organisations=await uow.organisations.children_count(cmd.org_id),
        )
        await uow.organisations.save(org)
        await uow.commit()


async def join(cmd: c.JoinUnion, uow: MembershipUnitOfWork) -> Member:
    # One round trip to read, one to write the member and the MemberJoined together: the
    # federation's busiest call (a thousand joins a second on a campaign day). The unique ID
    # number guards the write again, so a join that raced another still loses cleanly.
    async with uow.in_one_statement():
        found = await uow.members.joining(normalise_id_number(cmd.id_number), cmd.union_id)
        if found.holder is not None:
            raise Conflict(
                "id_number", "already_a_member", "already a member", existing_member_id=found.holder
            )
        if found.union is None or found.card_serial is None:
            raise NotFound("union_id", "organisation_not_found", f"no organisation {cmd.union_id}")
        member = Member.join(
            id=f"m-{uuid.uuid4().hex}",
            name=cmd.name,
            id_number=cmd.id_number,
            mobile=cmd.mobile,
            categories=cmd.categories,
            channel=cmd.channel,
            union=found.union,
            employer_name=cmd.employer_name,
            joined_on=cmd.joined_on or uow.clock.today(),
            card_serial=found.card_serial,
            today=uow.clock.today(),
        )
        if not await uow.commit_with(*uow.members.adding(member)):
            # Two joins with one ID number raced; the other one won.
            winner = await uow.members.id_of(id_number=member.resident_id.number)
            raise Conflict(
                "id_number", "already_a_member", "already a member", existing_member_id=winner
            )
        return member


@asynccontextmanager
async def _changing(member_id: str, uow: MembershipUnitOfWork) -> AsyncIterator[Member]:
    """The member, locked for the caller to change, then saved with the events the change
    recorded, in one unit of work (a refusal inside rolls it all back)."""
    async with uow:
        member = await uow.members.get(member_id, lock=True)
        yield member
        await uow.members.save(member)
        await uow.commit()


async def correct_details(cmd: c.CorrectDetails, uow: MembershipUnitOfWork) -> list[str]:
    async with _changing(cmd.member_id, uow) as member:
        changed = member.correct_details(**cmd.model_dump(exclude=set(cmd.route_fields())))
    return changed


async def transfer(cmd: c.Transfer, uow: MembershipUnitOfWork) -> None:
    today = uow.clock.today()
    async with _changing(cmd.member_id, uow) as member:
        to_union = await uow.organisations.get(cmd.to_union_id, field="to_union_id")
        member.transfer(to_union=to_union, on=cmd.transferred_on or today, today=today)


async def suspend(cmd: c.Suspend, uow: MembershipUnitOfWork) -> None:
    today = uow.clock.today()
    async with _changing(cmd.member_id, uow) as member:
        member.suspend(on=cmd.suspended_on or today, reason=cmd.reason, today=today)


async def reinstate(cmd: c.Reinstate, uow: MembershipUnitOfWork) -> None:
    today = uow.clock.today()
    async with _changing(cmd.member_id, uow) as member:
        member.reinstate(on=cmd.reinstated_on or today, today=today)


async def leave(cmd: c.Leave, uow: MembershipUnitOfWork) -> None:
    today = uow.clock.today()
    async with _changing(cmd.member_id, uow) as member:
        member.leave(on=cmd.left_on or today, reason=cmd.reason, today=today)


async def reissue_card(cmd: c.ReissueCard, uow: MembershipUnitOfWork) -> str:
    today = uow.clock.today()
    async with _changing(cmd.member_id, uow) as member:
        (serial,) = await uow.members.card_serials(1)
        number = member.reissue_card(serial=serial, on=cmd.issued_on or today, today=today)
    return number
