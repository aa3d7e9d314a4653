"""Online joins under open-loop load: ``uv run python -m bench.online_joins [--rates 250,500,...]``.

The platform runs as separate processes on a scratch database. For each rate, join requests are
sent on a fixed schedule for ``--seconds`` (open loop: a slow answer does not slow the schedule,
and latency counts from the scheduled time). Prints per rate the achieved rate, errors, p50/p99
latency, and the join-to-consumer latency (request sent -> the notifications service holds the
member); then the highest rate with p99 <= 50 ms. Target: >= 2,000 joins/s.

Membership runs as ``--api-workers`` HTTP processes plus one worker process for its relay and
consumers (``--api-workers 0``: one process doing everything). The load generator shares the
machine: its own CPU use is printed per rate, and a rate where it kept a core busy is flagged,
since there the client, not the service, may be what held the rate back.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson

from bench.common import namespace, servers
from bench.roster_import import union
from services.notifications.transport import LeanClient, PooledTransport
from shared.auth import signing
from shared.auth.client import SignedAuth
from shared.kafka import delete_topics
from tests.support.auth import issue_credential
from tests.support.database import create_database, drop_database
from tests.support.people import id_number, mobile
from tests.support.platform import launch_platform, wait_ready
from tests.support.servers import ROOT, SERVICES

P99_BUDGET_MS = 50.0
CLIENT_SATURATED = 0.9  # of one core: the client's own event loop is the bottleneck


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def step(
    client: LeanClient, app_id: str, secret: str, rate: int, seconds: float, first: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    sent_at: dict[str, float] = {}

    async def join(serial: int, due: float) -> None:
        nonlocal errors
        body = orjson.dumps(
            {
                "name": "王芳",
                "id_number": id_number(serial),
                "mobile": mobile(serial),
                "channel": "online",
                "union_id": "union",
                "employer_name": "亳州全市职工联合体",
            }
        )
        headers = signing.sign(app_id, secret, method="POST", path="/members", query="", body=body)
        headers["content-type"] = "application/json"
        try:
            answer = await client.post("/members", content=body, headers=headers)
        except httpx.HTTPError:
            errors += 1
            return
        done = time.perf_counter()
        if answer.status_code != 201:
            errors += 1
            return
        latencies.append((done - due) * 1000)
        sent_at[answer.json()["id"]] = time.time() - (done - due)

    count = int(rate * seconds)
    cpu_before = time.process_time()
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(join(first + i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "client_cpu": (time.process_time() - cpu_before) / elapsed,
        "rate": rate,
        "achieved": len(latencies) / elapsed,
        "errors": errors,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "sent_at": sent_at,
    }


async def consumer_latency(admin: asyncpg.Connection, sent_at: dict[str, float]) -> list[float]:
    """Milliseconds from each join's request to the notifications service's copy of the member."""
    deadline = time.perf_counter() + 120
    while True:
        rows = await admin.fetch(
            "SELECT member_id, updated_at FROM notifications.members WHERE member_id = ANY($1)",
            list(sent_at),
        )
        if len(rows) == len(sent_at) or time.perf_counter() > deadline:
            return [(r["updated_at"].timestamp() - sent_at[r["member_id"]]) * 1000 for r in rows]
        await asyncio.sleep(0.5)


async def main(rates: list[int], seconds: float, api_workers: int) -> None:
    found = servers()
    ns = namespace()
    db = await create_database(found)
    platform = launch_platform(
        {s: db.dsn(s) for s in SERVICES},
        found.kafka_bootstrap,
        ns,
        ROOT / "var/log/bench",
        split={"membership": api_workers} if api_workers else {},
    )
    results = []
    try:
        await wait_ready(platform)
        app_id, secret = await issue_credential(
            db.dsn("membership"), "membership", scopes=["organisations:write", "members:join"]
        )
        url = platform.urls["membership"]
        async with httpx.AsyncClient(base_url=url, auth=SignedAuth(app_id, secret)) as c:
            await union(c)
        admin = await asyncpg.connect(db.admin_dsn)
        client = LeanClient(PooledTransport(max_connections_per_host=256), timeout=30)
        client.base_url = httpx.URL(url)
        serial = 1
        for rate in rates:
            print(f"[bench] {rate} joins/s for {seconds:.0f} s at {datetime.now(UTC):%H:%M:%S}...")
            result = await step(client, app_id, secret, rate, seconds, serial)
            serial += int(rate * seconds)
            consumed = await consumer_latency(admin, result.pop("sent_at"))
            result["consumer_p50"] = percentile(consumed, 0.5)
            result["consumer_p99"] = percentile(consumed, 0.99)
            results.append(result)
        await client.aclose()
        await admin.close()
    finally:
        platform.stop()
        await drop_database(db)
        await delete_topics(found.kafka_bootstrap, ns)
    print()
    print("offered/s  achieved/s  errors   p50 ms   p99 ms   to-consumer p50 ms   p99 ms  client")
    for r in results:
        saturated = " saturated" if r["client_cpu"] >= CLIENT_SATURATED else ""
        print(
            f"{r['rate']:>9}  {r['achieved']:>10.0f}  {r['errors']:>6}  {r['p50']:>7.1f}"
            f"  {r['p99']:>7.1f}  {r['consumer_p50']:>19.0f}  {r['consumer_p99']:>7.0f}"
            f"  {r['client_cpu']:>5.0%}{saturated}"
        )
    if any(r["client_cpu"] >= CLIENT_SATURATED for r in results):
        print("client CPU >= 90% of a core: the load generator may have held those rates back")
    within = [r["rate"] for r in results if r["p99"] <= P99_BUDGET_MS and not r["errors"]]
    best = max(within, default=0)
    print(f"highest rate with p99 <= {P99_BUDGET_MS:.0f} ms: {best} joins/s (target >= 2,000)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,250,500,1000,1500,2000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--api-workers", type=int, default=2, help="0: one process for all")
    args = parser.parse_args()
    asyncio.run(main([int(r) for r in args.rates.split(",")], args.seconds, args.api_workers))
