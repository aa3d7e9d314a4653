"""The 云课堂 lecture: one online lecture open to every member, 300,000 of them watching.

    uv run python -m bench lecture [--quick] [--set members=300000 enrol_rate=2000 ...]

1. The members join (MemberJoined straight onto membership's topic, as ``bench.consumers`` writes
   them) and the benchmark waits until every consumer group has them, training's view included.
2. Staff create a lecture-series course for all members (complete: 45 minutes watched) and
   schedule one class with no seat limit.
3. Every member enrols through the API at ``enrol_rate`` a second, open loop: the sustained rate
   and the p99 (target: >= 2,000/s at p99 <= 100 ms). The throughput over the first and the last
   thousand answered shows, while the API is saturated, whether an enrolment's cost grows with
   the class (latency would grow with the queue alone).
4. The live platform's watched-minutes export (60 minutes each) is submitted and applied; the
   time it takes (target <= 60 s).
5. Each report completes its member's course; the time until every resulting event has reached
   the notifications service (target <= 120 s), and the certificates it learnt of.

The export goes as the streaming platform sends it: one ``POST
/classes/{id}/viewing-reports/batches`` in the columns form (report ids, member ids, minutes).

The load generator is held to the same 150 MB as every process: the enrolments keep their
latencies and serials in flat arrays (``bench.load.Step``), and the export (10 MB at 300,000) is
written once as JSON bytes straight from the serials and streamed from that one buffer, never
built as lists of ids, then a document, then the transport's own copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
import traceback
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from bench.common import Running, all_caught_up, platform_cpu, platform_running, wait_until
from bench.consumers import produce
from bench.load import Refused, Step, open_loop
from bench.online_joins import lean_client
from bench.processes import spent
from bench.results import Figure, Outcome, Target
from shared.auth import signing
from tests.support.auth import issue_credential

CERTIFICATE_ISSUED = "gonghui.training.certificate.issued"
WATCHED_MINUTES = 60
NEEDED = 45  # minutes watched to complete
UPLOAD_CHUNK = 64 * 1024  # bytes of the export handed to the connection at a time
# From the export's answer until every resulting event has reached notifications: five times
# the target, beyond which the figure is reported as not met rather than waited for.
NOTIFIED_SECONDS = 600.0

# The enrolments are offered at the target's rate: where the API answers fewer, the schedule
# slips and the p99 says so. At the 460-530 a second measured, 300,000 take 9-11 minutes; the
# budget leaves room for a slower run without shrinking the class. The export waits up to ten
# times its target. One full run on a quiet machine took 16 minutes in all (529/s).
FULL: dict[str, Any] = {
    "members": 300_000,
    "unions": 400,
    "enrol_rate": 2000,
    "enrol_budget_s": 900.0,
    "viewing_timeout_s": 600.0,
    "api_workers": 2,
}
QUICK: dict[str, Any] = {
    "members": 2_000,
    "unions": 40,
    "enrol_rate": 200,
    "enrol_budget_s": 60.0,
    "viewing_timeout_s": 120.0,
    "api_workers": 2,
}


def member_id(serial: int) -> str:
    return f"M{serial:08d}"  # as bench.consumers.joins names them


class Training:
    """A signed client of the training API."""

    def __init__(self, url: str, app_id: str, secret: str) -> None:
        self.client = lean_client(url)
        self.app_id, self.secret = app_id, secret

    async def post(self, path: str, body: bytes) -> httpx.Response:
        headers = signing.sign(
            self.app_id, self.secret, method="POST", path=path, query="", body=body
        )
        headers["content-type"] = "application/json"
        return await self.client.post(path, content=body, headers=headers)

    async def post_streamed(self, path: str, body: bytearray, timeout: float) -> httpx.Response:
        """POST a large body from its one buffer, a chunk at a time, with its length declared
        (so not chunked on the wire). The lean client reads a body whole and joins it to the
        head, two more copies; httpx's own transport streams it."""
        digest = hashlib.sha256(body).hexdigest()
        headers = signing.sign(
            self.app_id, self.secret, method="POST", path=path, body_sha256=digest
        )
        headers |= {"content-type": "application/json", "content-length": str(len(body))}

        async def chunks() -> AsyncIterator[bytes]:
            view = memoryview(body)
            for at in range(0, len(body), UPLOAD_CHUNK):
                yield bytes(view[at : at + UPLOAD_CHUNK])

        async with httpx.AsyncClient(base_url=self.client.base_url, timeout=timeout) as client:
            return await client.post(path, content=chunks(), headers=headers)

    async def post_ok(self, path: str, body: bytes) -> Any:
        answer = await self.post(path, body)
        if answer.status_code >= 300:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text}")
        return answer.json()


async def lecture_class(api: Training) -> str:
    course = await api.post_ok(
        "/courses",
        orjson.dumps(
            {
                "title": "职工云课堂",
                "kind": "lecture_series",
                "provider": "市总工会",
                "audience": {"kind": "all_members"},
                "completion": {"min_attendance_percent": None, "min_watched_minutes": NEEDED},
            }
        ),
    )
    now = datetime.now(UTC)
    starts = now + timedelta(days=1)
    schedule = {
        "name": "live",
        "capacity": None,
        "enrolment_opens_at": (now - timedelta(minutes=1)).isoformat(),
        "enrolment_closes_at": starts.isoformat(),
        "sessions": [
            {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "online_link": "https://live.example/lecture",
            }
        ],
    }
    made = await api.post_ok(f"/courses/{course['course_id']}/classes", orjson.dumps(schedule))
    class_id: str = made["class_id"]
    return class_id


async def members_known(running: Running, params: dict[str, Any]) -> float:
    """Seconds from writing the joins until every group following membership's events has them."""
    topic = f"{running.namespace}membership.events"
    started = time.perf_counter()
    await produce(running.servers.kafka_bootstrap, topic, params["members"], params["unions"])
    admin = await asyncpg.connect(running.db.admin_dsn)
    try:

        async def learnt() -> tuple[int, int]:
            known = await admin.fetchval("SELECT count(*) FROM training.members")
            return known, params["members"]

        await wait_until("members learnt by training", learnt, interval=1.0)
    finally:
        await admin.close()
    await all_caught_up(running.servers.kafka_bootstrap, topic, timeout=900)
    return time.perf_counter() - started


async def enrol_everyone(api: Training, class_id: str, params: dict[str, Any]) -> Step:
    path = f"/classes/{class_id}/enrolments"

    async def enrol(serial: int) -> None:  # the serial names the member: nothing more to keep
        body = b'{"member_id": "%s"}' % member_id(serial).encode()
        answer = await api.post(path, body)
        if answer.status_code != 201:
            raise Refused.of(answer)

    return await open_loop(
        enrol,
        params["enrol_rate"],
        params["members"] / params["enrol_rate"],
        0,
        max_in_flight=512,
        budget=params["enrol_budget_s"],
    )


@dataclass
class Export:
    """The watched-minutes export, sent as one batch, and what training answered."""

    lines: int
    body_mb: float
    elapsed: float
    counted: int
    refused: int


def export_body(serials: Sequence[int]) -> bytearray:
    """The watched-minutes export of these members in the columns form, as JSON bytes written
    straight into one buffer: ``{"report_ids": ["live-M...", ...], "member_ids": ["M...", ...],
    "minutes": [60, ...]}``. Lists of 300,000 ids and a document made from them were 50 MB."""
    body = bytearray(b"{")
    columns = (
        (b"report_ids", lambda serial: b'"live-%s",' % member_id(serial).encode()),
        (b"member_ids", lambda serial: b'"%s",' % member_id(serial).encode()),
        (b"minutes", lambda _: b"%d," % WATCHED_MINUTES),
    )
    for n, (name, item) in enumerate(columns):
        body += b'%s"%s":[' % (b"," if n else b"", name)
        for serial in serials:
            body += item(serial)
        if serials:
            del body[-1]  # the last item's comma
        body += b"]"
    body += b"}"
    return body


async def submit_export(
    api: Training, class_id: str, serials: Sequence[int], params: dict[str, Any]
) -> Export:
    body = export_body(serials)
    started = time.perf_counter()
    answer = await api.post_streamed(
        f"/classes/{class_id}/viewing-reports/batches", body, params["viewing_timeout_s"]
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"the export was refused: {answer.status_code} {answer.text[:500]}")
    outcome = answer.json()
    return Export(
        len(serials), len(body) / 1e6, elapsed, outcome["counted"], len(outcome["refused"])
    )


async def notified(running: Running, expected: int) -> tuple[float | None, int]:
    """Seconds until every event training published has reached notifications' consumer (None
    if not within NOTIFIED_SECONDS: a figure not met, not a benchmark that failed), and the
    certificates notifications took in."""
    started = time.perf_counter()
    admin = await asyncpg.connect(running.db.admin_dsn)
    try:

        async def published() -> tuple[int, int]:
            waiting = await admin.fetchval(
                "SELECT count(*) FROM training.outbox WHERE published_at IS NULL"
            )
            return expected - min(waiting, expected), expected

        behind = None
        with contextlib.suppress(TimeoutError):
            await wait_until("training's events published", published, NOTIFIED_SECONDS)
            left = NOTIFIED_SECONDS - (time.perf_counter() - started)
            topic = f"{running.namespace}training.events"
            behind = await all_caught_up(running.servers.kafka_bootstrap, topic, max(left, 1.0))
        certificates = await admin.fetchval(
            "SELECT count(*) FROM notifications.inbox WHERE event_type = $1", CERTIFICATE_ISSUED
        )
    finally:
        await admin.close()
    return (time.perf_counter() - started if behind is not None else None), certificates


def per_process(cpu: dict[str, float], events: int) -> str:
    """Each process group's share, in ms per event: where an enrolment's CPU goes (the API's
    children, the worker, the groups following training's events, the Postgres backends)."""
    shares = sorted(cpu.items(), key=lambda item: -item[1])
    return ", ".join(f"{g} {s / max(events, 1) * 1000:.2f}" for g, s in shares if s > 0)


def enrolment_figures(
    learnt: float, enrolled: Step, cpu: dict[str, float], params: dict[str, Any]
) -> list[Figure]:
    count = len(enrolled.latencies_ms)
    cut = " (budget ran out)" if enrolled.cut_short else ""
    return [
        Figure(
            "members learnt by every consumer group",
            learnt,
            "s",
            note=f"{params['members']:,} joins",
        ),
        Figure(
            "enrolments through the API, sustained",
            enrolled.achieved,
            "/s",
            Target(">=", 2000),
            note=f"{count:,} of {params['members']:,} enrolled{cut}, offered"
            f" {params['enrol_rate']:,}/s; errors: {dict(enrolled.error_kinds) or 0}",
        ),
        Figure("enrolment p99", enrolled.p99, "ms", Target("<=", 100)),
        Figure(
            "enrolment throughput over the last 1,000 answered",
            enrolled.throughput(count - 1000, count - 1),
            "/s",
            note=f"first 1,000: {enrolled.throughput(0, 999):,.1f}/s; while saturated, a fall"
            " means each enrolment costs more as the class grows",
        ),
        Figure(
            "platform CPU per enrolment (services + their Postgres backends)",
            platform_cpu(cpu) / max(count, 1) * 1000,
            "ms",
            note=per_process(cpu, count),
        ),
    ]


def viewing_figures(
    export: Export, cpu: dict[str, float], reached: float | None, certificates: int
) -> list[Figure]:
    return [
        Figure(
            "watched-minutes export applied",
            export.elapsed,
            "s",
            Target("<=", 60),
            note=f"one batch of {export.lines:,} lines ({export.body_mb:.1f} MB):"
            f" {export.counted:,} counted, {export.refused:,} refused",
        ),
        Figure(
            "platform CPU per viewing report (services + their Postgres backends)",
            platform_cpu(cpu) / max(export.lines, 1) * 1000,
            "ms",
            note=per_process(cpu, export.lines),
        ),
        Figure(
            "completion events reached notifications, after the export",
            reached,
            "s",
            Target("<=", 120),
            note=f"notifications took in {certificates:,} certificates of {export.counted:,}"
            + ("" if reached is not None else f"; not within {NOTIFIED_SECONDS:g} s"),
        ),
    ]


async def run(**params: Any) -> Outcome:
    outcome = Outcome("lecture")
    workers = params["api_workers"]
    split = {"training": workers} if workers else {}
    async with platform_running(split) as running:
        try:
            learnt = await members_known(running, params)
            app_id, secret = await issue_credential(
                running.db.dsn("training"),
                "training",
                scopes=["training:manage", "training:enrol", "training:viewing", "training:read"],
            )
            api = Training(running.platform.urls["training"], app_id, secret)
            try:
                class_id = await lecture_class(api)
                cpu = running.watch.cpu()
                enrolled = await enrol_everyone(api, class_id, params)
                cpu_enrol, cpu = spent(cpu, running.watch.cpu()), running.watch.cpu()
                # Reported now: a full-scale enrolment is ten minutes of measuring, kept
                # whatever the export then does.
                outcome.add(*enrolment_figures(learnt, enrolled, cpu_enrol, params))
                if enrolled.client_cpu >= 0.9:
                    outcome.notes.append(
                        "the load generator kept ≥ 90% of a core busy while enrolling"
                    )
                members = array("q", sorted(enrolled.serials))
                print(f"[bench] {len(members):,} enrolled; submitting the export...", flush=True)
                export = await submit_export(api, class_id, members, params)
                cpu_view = spent(cpu, running.watch.cpu())
                reached, certificates = await notified(running, 2 * export.counted)
                outcome.add(*viewing_figures(export, cpu_view, reached, certificates))
            finally:
                await api.client.aclose()
        except Exception as error:
            if not outcome.figures:
                raise  # nothing measured: the benchmark failed as a whole
            traceback.print_exc()
            outcome.error = f"after the enrolments: {type(error).__name__}: {error}"
        finally:
            outcome.peak_rss_mb = dict(running.watch.peak_mb)
    return outcome


if __name__ == "__main__":
    from bench.__main__ import main

    main(["lecture", *sys.argv[1:]])
