"""The load of the chaos run: every service's own flows, through their public APIs, signed.

Members arrive by roster (a CSV import of tens of thousands) and one by one online; a second
roster transfers some to another union, a complete roster of the first union takes some off and
renames others, a fourth has some of the leavers rejoin elsewhere. Members are bound to WeChat, so
notifications sends their messages to the simulator. Mutual aid covers units' staff, records
contributions and takes claims that officers approve and the payout worker pays. Training
enrols members in classes with a waitlist and some cancel. Leaving reaches mutual aid (cover ends)
and training (enrolments cancelled, the next in line promoted) through the consumers.

Every call is retried while the service is down or answers 5xx: the retries are what a client of
a crashing service does, and each kind of call is safe to repeat (a repeated join, roster, binding,
enrolment, contribution or approval is recognised). A repeated claim is the one exception the
APIs document: it comes back auto-rejected as a duplicate invoice, never paid twice. What each
call was acknowledged with is kept for the ledger: an acknowledged write must exist.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.chaos.probe import Db
from shared.auth.client import SignedAuth
from tests.support.people import credit_code, id_number, mobile, name
from tests.support.platform import Platform

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ONLINE_SERIAL = 1_000_000  # serials (tests.support.people) of each source of people
ROSTER2_SERIAL = 2_000_000
ROSTER4_SERIAL = 3_000_000
TOPUP_SERIAL = 4_000_000
UNIT_STAFF = 1000  # members a mutual aid unit (a union's workshop) enrols at most
PER_100K = {  # how much of each flow a run of 100,000 events drives (about 101,000 events)
    "roster1": 40_000,
    "online": 8_000,
    "transfers": 4_000,
    "roster2_new": 8_000,
    "leavers": 3_000,
    "renamed": 4_000,
    "rejoin": 1_500,
    "roster4_new": 1_500,
    "bound": 6_000,
    "covered": 11_000,
    "covered_leavers": 1_000,
    "covered_online": 3_000,
    "contributions": 600,
    "claims": 1_500,
    "classes": 40,
    "enrolments": 8_000,
    "enrolled_leavers": 300,
    "cancellations": 400,
}


class LoadError(Exception):
    """A service answered what no retry can change (a 4xx the flow does not expect)."""


@dataclass(frozen=True)
class Scale:
    roster1: int
    online: int
    transfers: int
    roster2_new: int
    leavers: int
    renamed: int
    rejoin: int
    roster4_new: int
    bound: int
    covered: int
    covered_leavers: int
    covered_online: int
    contributions: int
    claims: int
    classes: int
    enrolments: int
    enrolled_leavers: int
    cancellations: int

    @classmethod
    def for_events(cls, events: int) -> Scale:
        s = events / 100_000
        n = {k: max(2, round(v * s)) for k, v in PER_100K.items()}
        staying = n["roster1"] - n["transfers"] - n["leavers"]
        n["bound"] = min(n["bound"], staying)
        n["covered"] = min(n["covered"], staying)
        n["renamed"] = min(n["renamed"], staying)
        n["claims"] = min(n["claims"], n["covered"], n["bound"])
        n["covered_leavers"] = min(n["covered_leavers"], n["leavers"])
        n["enrolled_leavers"] = min(n["enrolled_leavers"], n["leavers"])
        n["rejoin"] = min(n["rejoin"], n["leavers"])
        n["covered_online"] = min(n["covered_online"], n["online"])
        n["enrolments"] = min(n["enrolments"], n["bound"] + n["online"])
        return cls(**n)

    @property
    def staying(self) -> int:
        """Roster-1 serials [0, staying) stay in the first union to the end."""
        return self.roster1 - self.transfers - self.leavers

    @property
    def capacity(self) -> int:
        """Seats per class: a quarter of those enrolling in a class wait in line."""
        return max(1, (self.enrolments + self.enrolled_leavers) * 3 // (4 * self.classes))


@dataclass
class Acknowledged:
    """What the services acknowledged: each must exist in their databases at the end."""

    members: dict[int, str] = field(default_factory=dict)  # serial -> member id
    contributions: dict[str, int] = field(default_factory=dict)  # receipt -> fen
    claims: set[str] = field(default_factory=set)
    enrolments: dict[str, str] = field(default_factory=dict)  # training enrolment -> member
    cancelled: set[str] = field(default_factory=set)  # training enrolment ids
    bindings: dict[str, str] = field(default_factory=dict)  # member -> openid
    rosters: dict[str, tuple[str, int]] = field(default_factory=dict)  # job -> (union, rows)
    approvals: set[str] = field(default_factory=set)


def openid_of(member_id: str) -> str:
    return f"o{member_id}"


class Load:
    def __init__(
        self,
        platform: Platform,
        db: Db,
        credentials: dict[str, tuple[str, str]],
        scale: Scale,
        seed: int,
    ) -> None:
        self.platform = platform
        self.db = db
        self.scale = scale
        self.rng = random.Random(seed)
        self.clients = {
            service: httpx.AsyncClient(
                base_url=platform.urls[service],
                auth=SignedAuth(*credentials[service]),
                timeout=httpx.Timeout(60, connect=5),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            )
            for service in credentials
        }
        self.done = Counter[str]()  # acknowledged calls per kind
        self.retries = Counter[str]()  # calls sent again per kind
        self.in_doubt = Counter[str]()  # calls whose answer was lost (sent, no answer)
        self.errors: list[str] = []  # answers no flow expects
        self.ack = Acknowledged()
        self.stage = "setup"
        self.today = date.today()
        self.dates = _dates(self.today)
        self.classes: list[str] = []
        self.enrolments: dict[str, str] = {}  # unit -> mutual aid enrolment id
        self.unit_of: dict[str, str] = {}  # member -> the unit covering them
        self.to_bind: asyncio.Queue[str] = asyncio.Queue()
        # Awaited before each call of a flow: holds the load back so that it does not run ahead
        # of the fault schedule (the faults are to strike every flow, not the last one only).
        self.gate: Callable[[], Awaitable[None]] | None = None
        self._binders: list[asyncio.Task[None]] = []
        self.topup = 0

    async def close(self) -> None:
        for task in self._binders:
            task.cancel()
        await asyncio.gather(*self._binders, return_exceptions=True)
        for client in self.clients.values():
            await client.aclose()

    @property
    def workshops(self) -> dict[str, int]:
        """Each union -> the workshops (mutual aid units) its covered staff fill."""
        s = self.scale
        return {
            "u1": -(-(s.covered + s.covered_leavers) // UNIT_STAFF),
            "u0": -(-s.covered_online // UNIT_STAFF),
        }

    # ------------------------------------------------------------------------ progress

    UNITS = (
        "online joins",
        "bindings",
        "members covered",
        "contributions",
        "claims",
        "approvals",
        "enrolments",
        "cancellations",
    )

    @property
    def planned_units(self) -> int:
        """The flows' work: a roster row, a join, a binding, a member covered, a contribution,
        a claim, an approval, an enrolment or a cancellation each count one."""
        s = self.scale
        rosters = s.roster1 + s.transfers + s.roster2_new + s.staying + s.rejoin + s.roster4_new
        return (
            rosters
            + s.online
            + s.bound
            + s.online
            + s.covered
            + s.covered_leavers
            + s.covered_online
            + s.contributions
            + 2 * s.claims
            + s.enrolments
            + s.enrolled_leavers
            + s.cancellations
        )

    def units(self, roster_rows_read: int) -> int:
        """The flows' work done: roster rows as their jobs read them, the rest as acknowledged."""
        return roster_rows_read + sum(self.done[k] for k in self.UNITS)

    # ------------------------------------------------------------------------ calls

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        kind: str,
        *,
        accept: Iterable[int] = (),
        patience: float = 900.0,
        **request: Any,
    ) -> httpx.Response:
        """The answer once it is a success or one of ``accept``; retried meanwhile."""
        accepted = set(accept)
        deadline = time.monotonic() + patience
        delay = 0.2
        while True:
            try:
                answer = await self.clients[service].request(method, path, **request)
            except httpx.TransportError as exc:
                if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    self.in_doubt[kind] += 1  # sent, and the answer never came
                reason = type(exc).__name__
            else:
                if answer.status_code < 300 or answer.status_code in accepted:
                    self.done[kind] += 1
                    return answer
                if answer.status_code not in RETRY_STATUSES:
                    message = f"{method} {path}: {answer.status_code} {answer.text[:300]}"
                    self.errors.append(message)
                    raise LoadError(message)
                if answer.status_code == 500:
                    self.in_doubt[kind] += 1
                reason = str(answer.status_code)
            self.retries[kind] += 1
            if time.monotonic() > deadline:
                raise LoadError(f"{method} {path}: still {reason} after {patience:.0f}s")
            await asyncio.sleep(delay)  # paces the retries of a client whose service is down
            delay = min(delay * 2, 2.0)

    @staticmethod
    def code(answer: httpx.Response) -> str:
        try:
            return str(answer.json()["errors"][0]["code"])
        except (ValueError, KeyError, IndexError, TypeError):
            return ""

    async def each(
        self, items: Sequence[Any], work: Callable[[Any], Awaitable[object]], concurrency: int
    ) -> None:
        """``work`` on every item, ``concurrency`` at a time."""
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                if self.gate is not None:
                    await self.gate()
                await work(item)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(items))))))

    # ------------------------------------------------------------------------ set-up

    async def setup(self) -> None:
        for body in _organisations(self.workshops):
            await self.call("membership", "POST", "/organisations", "organisations", json=body)
        year = self.dates.year
        plan = await self.call(
            "mutual_aid",
            "POST",
            "/plans",
            "plans",
            json={
                "scheme_year": year,
                "contribution_per_member_fen": 12_000,
                "rules": {
                    "deductible_fen": 100_000,
                    "bands": [
                        {"lower_fen": 0, "upper_fen": 1_000_000, "ratio": "0.5"},
                        {"lower_fen": 1_000_000, "upper_fen": None, "ratio": "0.6"},
                    ],
                    "per_claim_ceiling_fen": 5_000_000,
                    "yearly_ceiling_fen": 8_000_000,
                    "waiting_period_days": 30,
                    "submission_deadline_days": 365,
                },
            },
        )
        plan_id = plan.json()["plan_id"]
        await self.call(
            "mutual_aid", "POST", f"/plans/{plan_id}/publish", "plans", json={}, accept=(409,)
        )
        course = await self.call(
            "training",
            "POST",
            "/courses",
            "courses",
            json={"title": "工会干部培训班", "kind": "cadre_training", "provider": "亳州市总工会"},
        )
        course_id = course.json()["course_id"]
        now = datetime.now(UTC)
        for i in range(self.scale.classes):
            klass = await self.call(
                "training",
                "POST",
                f"/courses/{course_id}/classes",
                "classes",
                json={
                    "name": f"第{i + 1}期",
                    "capacity": self.scale.capacity,
                    "enrolment_opens_at": (now - timedelta(hours=1)).isoformat(),
                    "enrolment_closes_at": (now + timedelta(days=20)).isoformat(),
                    "sessions": [
                        {
                            "starts_at": (now + timedelta(days=21, hours=i % 8)).isoformat(),
                            "ends_at": (now + timedelta(days=21, hours=i % 8 + 2)).isoformat(),
                            "venue": "亳州市职工服务中心",
                        }
                    ],
                },
            )
            self.classes.append(klass.json()["class_id"])
        self._binders = [asyncio.create_task(self._binder()) for _ in range(4)]

    # ------------------------------------------------------------------------ the flows

    async def run(self) -> None:
        """Every flow, in the order their people need (a roster's members exist before they are
        covered, enrolled, transferred or taken off)."""
        s = self.scale
        self.stage = "roster 1, online joins"
        joins = asyncio.create_task(self.online_joins(ONLINE_SERIAL, s.online, bind=True))
        await self.roster("r1", "u1", range(s.roster1), joined_on=self.dates.joined_on)
        for serial in range(s.bound):
            self.to_bind.put_nowait(self.ack.members[serial])
        self.stage = "roster 2, cover, enrolments"
        leavers = list(range(s.staying, s.staying + s.leavers))
        covered = [self.ack.members[i] for i in [*range(s.covered), *leavers[: s.covered_leavers]]]
        cover_u1 = asyncio.create_task(self.cover("u1", covered))
        roster_bound = min(s.bound, s.enrolments * 3 // 4)
        enrol_u1 = asyncio.create_task(
            self.enrol(
                [
                    self.ack.members[i]
                    for i in [*range(roster_bound), *leavers[: s.enrolled_leavers]]
                ]
            )
        )
        roster2 = asyncio.create_task(
            self.roster(
                "r2",
                "u2",
                [*range(s.roster1 - s.transfers, s.roster1)],
                new=range(ROSTER2_SERIAL, ROSTER2_SERIAL + s.roster2_new),
            )
        )
        await joins
        online = [self.ack.members[ONLINE_SERIAL + i] for i in range(s.online)]
        cover_u0 = asyncio.create_task(self.cover("u0", online[: s.covered_online]))
        enrol_u0 = asyncio.create_task(self.enrol(online[: s.enrolments - roster_bound]))
        await asyncio.gather(cover_u1, cover_u0)
        contributions = asyncio.create_task(self.contributions())
        await asyncio.gather(enrol_u1, enrol_u0, roster2)
        self.stage = "roster 3, claims, cancellations"
        roster3 = asyncio.create_task(
            self.roster(
                "r3",
                "u1",
                range(s.staying),
                renamed=range(s.renamed),
                complete=True,
            )
        )
        claims = asyncio.create_task(self.claims([self.ack.members[i] for i in range(s.claims)]))
        cancellations = asyncio.create_task(self.cancellations())
        await roster3
        self.stage = "roster 4 (rejoins), claims"
        roster4 = asyncio.create_task(
            self.roster(
                "r4",
                "u3",
                leavers[: s.rejoin],
                new=range(ROSTER4_SERIAL, ROSTER4_SERIAL + s.roster4_new),
            )
        )
        await asyncio.gather(contributions, claims, cancellations, roster4)
        self.stage = "done"

    async def top_up(self, enough: Callable[[], bool]) -> None:
        """More online joins, until ``enough()``: the load goes on while faults remain."""
        self.stage = "top-up joins"
        self.gate = None
        serial = TOPUP_SERIAL
        while not enough():
            batch = range(serial, serial + 50)
            serial += 50
            await self.each(list(batch), self._join, concurrency=4)
            self.topup += len(batch)
        self.stage = "done"

    # membership ------------------------------------------------------------------------------

    async def online_joins(self, first: int, count: int, *, bind: bool) -> None:
        async def join(serial: int) -> None:
            member_id = await self._join(serial)
            if bind:
                self.to_bind.put_nowait(member_id)

        await self.each(list(range(first, first + count)), join, concurrency=8)

    async def _join(self, serial: int) -> str:
        answer = await self.call(
            "membership",
            "POST",
            "/members",
            "online joins",
            accept=(409,),
            json={
                "name": name(serial),
                "id_number": id_number(serial),
                "mobile": mobile(serial),
                "channel": "online",
                "union_id": "u0",
                "employer_name": "亳州全市职工联合体",
                "joined_on": self.dates.joined_on.isoformat(),
            },
        )
        body = answer.json()
        if answer.status_code == 409:
            if self.code(answer) != "already_a_member":
                raise LoadError(f"join {serial}: {answer.text[:300]}")
            member_id = str(body["existing_member_id"])  # the first try was applied
        else:
            member_id = str(body["id"])
        self.ack.members[serial] = member_id
        return member_id

    async def roster(
        self,
        batch: str,
        union: str,
        serials: Iterable[int],
        *,
        new: Iterable[int] = (),
        renamed: Iterable[int] = (),
        joined_on: date | None = None,
        complete: bool = False,
    ) -> None:
        """Submit a roster of ``serials`` (and ``new`` people) to ``union``, follow its job to
        the end, and learn the member ids of its people."""
        people = [*serials, *new]
        other_name = set(renamed)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id_number", "name", "mobile", "categories", "joined_on"])
        for serial in people:
            person = name(serial) + ("新" if serial in other_name else "")
            writer.writerow(
                [
                    id_number(serial),
                    person,
                    mobile(serial),
                    "",
                    joined_on.isoformat() if joined_on else "",
                ]
            )
        content = out.getvalue().encode()
        if self.gate is not None:
            await self.gate()
        answer = await self.call(
            "membership",
            "POST",
            f"/organisations/{union}/rosters",
            "rosters",
            files={"file": (f"{batch}.csv", content, "text/csv")},
            data={"batch_id": batch, "complete": "true" if complete else "false"},
        )
        job_id = answer.json()["id"]
        self.ack.rosters[job_id] = (union, len(people))
        while True:
            job = (
                await self.call("membership", "GET", f"/rosters/{job_id}", "roster polls")
            ).json()
            if job["state"] in ("done", "failed"):
                break
            await asyncio.sleep(0.5)  # polls the job, as the roster guide says to
        if job["state"] == "failed":
            self.errors.append(f"roster {batch} failed: {job.get('failure')}")
        self.done["roster rows"] += len(people)
        numbers = {id_number(serial): serial for serial in people}
        rows = await self.db.fetch(
            "SELECT id, id_number FROM membership.members WHERE id_number = ANY($1)",
            list(numbers),
        )
        for row in rows:
            self.ack.members[numbers[row["id_number"]]] = row["id"]

    # notifications ---------------------------------------------------------------------------

    async def _binder(self) -> None:
        """Binds queued members to WeChat once notifications has heard of them."""
        while True:
            member_id = await self.to_bind.get()
            openid = openid_of(member_id)
            answer = await self.call(
                "notifications",
                "PUT",
                f"/members/{member_id}/binding",
                "bindings",
                json={"openid": openid},
                accept=(404,),
            )
            if answer.status_code == 404:
                self.done["bindings"] -= 1
                # Not heard of yet (a join seconds ago): try again after the others.
                await asyncio.sleep(0.2)
                self.to_bind.put_nowait(member_id)
            else:
                self.ack.bindings[member_id] = openid
            self.to_bind.task_done()

    async def bindings_done(self) -> None:
        await self.to_bind.join()

    # mutual aid ------------------------------------------------------------------------------

    async def _known_to_mutual_aid(self, members: Sequence[str]) -> None:
        """Waits until mutual aid has heard of every member (from membership's events):
        enrolled before, they would be listed as not covered."""
        while True:
            known = await self.db.fetchval(
                "SELECT count(*) FROM mutual_aid.members WHERE member_id = ANY($1)", list(members)
            )
            if known >= len(members):
                return
            await asyncio.sleep(0.5)

    async def cover(self, union: str, members: Sequence[str]) -> None:
        """Enrols the union's workshops (units of up to ``UNIT_STAFF`` members each) for the
        year with their staff. Small units keep each enrolment, which a contribution loads whole
        under the fund's lock, quick to load."""
        await self._known_to_mutual_aid(members)
        chunks = [list(members[i : i + UNIT_STAFF]) for i in range(0, len(members), UNIT_STAFF)]

        async def enrol_unit(k: int) -> None:
            unit = f"{union}-{k + 1}"
            answer = await self.call(
                "mutual_aid",
                "POST",
                "/enrolments",
                "unit enrolments",
                accept=(409,),
                json={
                    "unit_id": unit,
                    "scheme_year": self.dates.year,
                    "staff": chunks[k],
                    "enrolled_on": self.dates.enrolled_on.isoformat(),
                },
            )
            if answer.status_code == 409 and self.code(answer) != "already_enrolled":
                raise LoadError(f"enrol {unit}: {answer.text[:300]}")
            self.enrolments[unit] = str(answer.json()["enrolment_id"])
            self.done["members covered"] += len(chunks[k])
            for member_id in chunks[k]:
                self.unit_of[member_id] = unit

        await self.each(list(range(len(chunks))), enrol_unit, concurrency=2)

    async def contributions(self) -> None:
        s = self.scale
        amount = -(-s.claims * 200_000 // s.contributions)  # enough to pay every claim
        units = sorted(self.enrolments)

        async def contribute(i: int) -> None:
            receipt = f"R-{i:06d}"
            unit = units[i % len(units)]
            answer = await self.call(
                "mutual_aid",
                "POST",
                f"/enrolments/{self.enrolments[unit]}/contributions",
                "contributions",
                accept=(409,),
                json={"receipt_number": receipt, "amount_fen": amount, "payer": f"{unit}单位"},
            )
            if answer.status_code == 409 and self.code(answer) != "already_recorded":
                raise LoadError(f"contribution {receipt}: {answer.text[:300]}")
            self.ack.contributions[receipt] = amount

        await self.each(list(range(s.contributions)), contribute, concurrency=4)

    async def claims(self, members: Sequence[str]) -> None:
        d = self.dates

        async def submit(i: int) -> None:
            answer = await self.call(
                "mutual_aid",
                "POST",
                "/claims",
                "claims",
                json={
                    "member_id": members[i],
                    "unit_id": self.unit_of[members[i]],
                    "admission_date": d.admission.isoformat(),
                    "discharge_date": d.discharge.isoformat(),
                    "hospital": "亳州市人民医院",
                    "invoice_numbers": [f"INV-{i:07d}"],
                    "total_expense_fen": 800_000,
                    "paid_by_basic_insurance_fen": 500_000,
                    "self_paid_in_catalogue_fen": 300_000,
                    "self_paid_outside_catalogue_fen": 0,
                    "diagnosis_code": "K35.2",
                    "submitted_by": {"kind": "unit", "id": self.unit_of[members[i]]},
                },
            )
            self.ack.claims.add(str(answer.json()["claim_id"]))

        submitting = asyncio.create_task(self.each(list(range(len(members))), submit, 4))
        while True:  # officers approve what is under review, as it comes in
            finished = submitting.done()
            waiting = [
                r["claim_id"]
                for r in await self.db.fetch(
                    "SELECT claim_id FROM mutual_aid.claims WHERE state = 'under_review'"
                    " ORDER BY claim_id LIMIT 500"
                )
            ]
            await self.each(waiting, self._approve, concurrency=4)
            if finished and not waiting:
                break
            if not waiting:
                await asyncio.sleep(0.5)  # paces the officers' look at the queue
        await submitting  # raises what submitting raised

    async def _approve(self, claim_id: str) -> None:
        answer = await self.call(
            "mutual_aid",
            "POST",
            f"/claims/{claim_id}/approve",
            "approvals",
            json={"officer": "chaos-officer"},
            accept=(409,),
        )
        if answer.status_code == 409 and self.code(answer) != "invalid_transition":
            raise LoadError(f"approve {claim_id}: {answer.text[:300]}")
        self.ack.approvals.add(claim_id)

    # training --------------------------------------------------------------------------------

    async def enrol(self, members: Sequence[str]) -> None:
        classes = self.classes

        async def enrol_one(i: int) -> None:
            member_id = members[i]
            class_id = classes[i % len(classes)]
            while True:
                answer = await self.call(
                    "training",
                    "POST",
                    f"/classes/{class_id}/enrolments",
                    "enrolments",
                    json={"member_id": member_id},
                    accept=(409, 422),
                )
                code = self.code(answer)
                if answer.status_code == 201:
                    self.ack.enrolments[answer.json()["enrolment_id"]] = member_id
                    return
                if code == "already_enrolled":  # the first try went through
                    mine = await self.call(
                        "training",
                        "GET",
                        f"/classes/{class_id}/enrolments/{member_id}",
                        "enrolment reads",
                    )
                    self.ack.enrolments[mine.json()["enrolment_id"]] = member_id
                    return
                if code not in ("not_a_member", "concurrent_change"):
                    raise LoadError(f"enrol {member_id}: {answer.status_code} {answer.text[:300]}")
                self.done["enrolments"] -= 1
                await asyncio.sleep(0.5)  # training hears of a new member seconds after the join

        await self.each(list(range(len(members))), enrol_one, concurrency=6)

    async def cancellations(self) -> None:
        """Some confirmed members give up their seat: the next in line takes it."""
        rows = await self.db.fetch(
            "SELECT class_id, member_id, enrolment_id FROM training.enrolments"
            " WHERE status = 'confirmed' AND enrolment_id = ANY($1) ORDER BY enrolment_id",
            list(self.ack.enrolments),
        )
        chosen = self.rng.sample(list(rows), min(self.scale.cancellations, len(rows)))

        async def cancel(row: Any) -> None:
            answer = await self.call(
                "training",
                "POST",
                f"/classes/{row['class_id']}/enrolments/{row['member_id']}/cancellation",
                "cancellations",
                json={"reason": "工作安排冲突"},
                accept=(409,),
            )
            if answer.status_code == 409 and self.code(answer) not in (
                "already_cancelled",
                "already_rejected",
            ):
                raise LoadError(f"cancel {row['enrolment_id']}: {answer.text[:300]}")
            self.ack.cancelled.add(row["enrolment_id"])

        await self.each(chosen, cancel, concurrency=4)


@dataclass(frozen=True)
class Dates:
    year: int
    joined_on: date
    enrolled_on: date
    admission: date
    discharge: date


def _dates(today: date) -> Dates:
    """A scheme year in which members joined, were covered, served the 30-day waiting period
    and went to hospital, all before today: this year once it is far enough on, else the last."""
    year = today.year if today >= date(today.year, 5, 1) else today.year - 1
    admission = min(today - timedelta(days=20), date(year, 12, 1))
    return Dates(
        year=year,
        joined_on=date(year, 1, 5),
        enrolled_on=date(year, 2, 1),
        admission=admission,
        discharge=admission + timedelta(days=7),
    )


def _organisations(workshops: dict[str, int]) -> list[dict[str, Any]]:
    """The federation, its county, four enterprise unions, and the unions' workshops (each a
    grassroots union of its own, enrolled in mutual aid as a unit)."""
    unions = [
        ("u0", "亳州全市职工联合体工会", "亳州全市职工联合体"),
        ("u1", "亳州中药饮片有限公司工会", "亳州中药饮片有限公司"),
        ("u2", "亳州货运物流有限公司工会", "亳州货运物流有限公司"),
        ("u3", "亳州建设集团有限公司工会", "亳州建设集团有限公司"),
    ]
    unions += [
        (f"{union}-{k}", f"{title}第{k}车间分会", f"{employer}第{k}车间")
        for union, title, employer in unions[:2]
        for k in range(1, workshops[union] + 1)
    ]
    return [
        {"id": "city", "name": "亳州市总工会", "kind": "city_federation"},
        {"id": "county", "name": "谯城区总工会", "kind": "county_federation", "parent_id": "city"},
    ] + [
        {
            "id": union,
            "name": title,
            "kind": "enterprise",
            "parent_id": "county",
            "founded_on": "2020-01-01",
            "employer": {
                "name": employer,
                "credit_code": credit_code(7000 + i),
                "headcount_band": "1000+",
                "address": "亳州市",
            },
        }
        for i, (union, title, employer) in enumerate(unions)
    ]
