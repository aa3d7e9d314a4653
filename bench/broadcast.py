"""Broadcast benchmark: N recipients against the WeChat simulator held to a quota of Q a second.

    uv run python -m bench.broadcast --recipients 300000 --quota-per-second 2000

Runs the simulator (``python -m wechat_simulator``, minute quota 60·Q) and the notifications
service (``python -m services.notifications``, send rate 0.98·Q) as processes of their own, in a
scratch database and a topic namespace of its own on Kafka and Postgres (started when they are
not running: ``bench.common.servers``). The
members and their WeChat bindings are written straight into the service's read model (what
membership events and OAuth logins would have built), then one broadcast to everyone is timed
from the request to its completion. Prints the achieved rate / Q (target >= 0.95), the duplicates
WeChat received (target 0) and the service's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.common import servers
from bench.processes import Watch
from bench.results import Figure, Outcome, Target
from services.notifications.rules import load_rules
from shared.auth.client import SignedAuth
from shared.kafka import delete_topics
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.ports import free_port
from wechat_simulator.config import DEFAULT_APPID, DEFAULT_SECRET

ROOT = Path(__file__).resolve().parents[1]
CALLBACK_TOKEN = "bench-callback-token"
SEED_BATCH = 50_000


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@asynccontextmanager
async def process(
    name: str, args: list[str], env: dict[str, str], logs: Path
) -> AsyncIterator[Process]:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=os.environ | env, stdout=out, stderr=out
        )
        running = Process(name, proc, log)
        try:
            yield running
        finally:
            await running.stop()


async def until_ready(url: str, proc: Process, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.proc.returncode is not None:
                raise RuntimeError(f"{proc.name} exited; see {proc.log}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{proc.name} not ready in {timeout}s; see {proc.log}")


async def seed(dsn: str, recipients: int) -> None:
    """The members and bindings the service would have learnt from events and logins."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "notifications"})
    try:
        await conn.execute(
            "INSERT INTO organisations (organisation_id, name) VALUES ('u-city', '市总工会')"
        )
        for start in range(0, recipients, SEED_BATCH):
            ids = range(start, min(start + SEED_BATCH, recipients))
            await conn.copy_records_to_table(
                "members",
                columns=["member_id", "name", "union_id", "union_path", "status"],
                records=[(f"bm{i:07d}", f"会员{i}", "u-city", [], "active") for i in ids],
            )
            await conn.copy_records_to_table(
                "bindings",
                columns=["member_id", "openid"],
                records=[(f"bm{i:07d}", f"oBench{i:08d}") for i in ids],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def peak_rss(pid: int, sampled: int) -> int:
    """The kernel's high-water mark of the process's resident set (VmHWM), else our samples."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return sampled


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quota = args.quota_per_second
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    sim_port, svc_port = free_port(), free_port()
    sim_url, svc_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{svc_port}"
    found = servers()
    db: ScratchDatabase = await create_database(found)
    sim_args = [
        "-m", "wechat_simulator", "--port", str(sim_port), "--minute-quota", str(quota * 60),
        "--daily-quota", "0", "--auto-create-users", "--callback-token", CALLBACK_TOKEN,
    ]  # fmt: skip
    if args.callbacks:
        sim_args += ["--callback-url", f"{svc_url}/wechat/callback"]
    prefix = "GONGHUI_NOTIFICATIONS_"
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    svc_env = {
        f"{prefix}DATABASE_URL": db.dsn("notifications"),
        f"{prefix}KAFKA_BOOTSTRAP": found.kafka_bootstrap,
        f"{prefix}TOPIC_NAMESPACE": namespace,
        f"{prefix}HTTP_PORT": str(svc_port),
        f"{prefix}WECHAT_BASE_URL": sim_url,
        f"{prefix}WECHAT_APPID": DEFAULT_APPID,
        f"{prefix}WECHAT_SECRET": DEFAULT_SECRET,
        f"{prefix}WECHAT_CALLBACK_TOKEN": CALLBACK_TOKEN,
        f"{prefix}SEND_RATE_PER_SECOND": str(quota * args.pace),
        f"{prefix}SENDER_CONCURRENCY": str(args.concurrency),
    }
    try:
        async with (
            process("simulator", sim_args, {}, logs) as sim,
            process("notifications", ["-m", "services.notifications"], svc_env, logs) as svc,
        ):
            roots = {"wechat_simulator": sim.pid, "notifications": svc.pid}
            async with Watch(roots, database=db.name) as watch:
                await until_ready(f"{sim_url}/_sim/health", sim)
                await until_ready(f"{svc_url}/readyz", svc)
                result = await measure(args, db, sim_url, svc_url, svc.pid)
            return result | {"peak_rss_of_every_process_mb": watch.peak_mb}
    finally:
        if not args.keep:
            await drop_database(db)
            await delete_topics(found.kafka_bootstrap, namespace)


async def measure(
    args: argparse.Namespace, db: ScratchDatabase, sim_url: str, svc_url: str, pid: int
) -> dict[str, Any]:
    rules = load_rules((ROOT / "services/notifications/rules.yaml").read_text(encoding="utf-8"))
    announcement = rules.templates["announcement"]
    app_id, secret = await issue_credential(
        db.dsn("notifications"),
        "notifications",
        scopes=["notifications:manage", "notifications:read"],
        name="bench",
    )
    async with (
        httpx.AsyncClient(timeout=60) as client,
        httpx.AsyncClient(base_url=svc_url, auth=SignedAuth(app_id, secret), timeout=60) as staff,
    ):
        await client.post(
            f"{sim_url}/_sim/templates",
            json={"template_id": announcement.template_id, "keys": list(announcement.keys)},
        )
        started = time.monotonic()
        await seed(db.dsn("notifications"), args.recipients)
        print(
            f"seeded {args.recipients:,} members and bindings in {time.monotonic() - started:.1f} s"
        )
        body = {
            "template": "announcement",
            "data": {
                "first": "{member_name}，您好：",
                "keyword1": "{union_name}",
                "keyword2": "2026年3月8日",
                "remark": "三八妇女节活动通知，请留意所在工会安排。",
            },
        }
        answer = await staff.post("/broadcasts", json=body)
        answer.raise_for_status()
        broadcast_id = answer.json()["id"]
        service = psutil.Process(pid)
        cpu_before = sum(service.cpu_times()[:2])
        sampled = 0
        while True:
            await asyncio.sleep(1)
            progress = (await staff.get(f"/broadcasts/{broadcast_id}")).json()
            sampled = max(sampled, service.memory_info().rss)
            print(
                f"\r{progress['status']:>9}  sent {progress['sent']:>7,}/{progress['queued']:,}"
                f"  failed {progress['failed']:,}  remaining {progress['remaining']:,}"
                f"  rss {sampled / 2**20:.0f} MB",
                end="",
                flush=True,
            )
            if progress["status"] in ("completed", "cancelled"):
                print()
                break
        cpu = sum(service.cpu_times()[:2]) - cpu_before
        stats = (await client.get(f"{sim_url}/_sim/stats")).json()
        # The simulator keeps only its latest messages whole; the first and last send's time it
        # keeps for every run.
        first, last = stats["first_send_at"], stats["last_send_at"]
    created = datetime.fromisoformat(progress["created_at"])
    finished = datetime.fromisoformat(progress["finished_at"])
    elapsed = (finished - created).total_seconds()
    accepted = stats["template_sends_accepted"]
    # Users are created by their first message (auto-create): each send beyond that is a second
    # message to someone.
    duplicates = accepted - stats["users"]["total"]
    achieved = progress["sent"] / elapsed
    return {
        "recipients": args.recipients,
        "quota_per_second": args.quota_per_second,
        "sent": progress["sent"],
        "failed": progress["failed"],
        "elapsed_seconds": round(elapsed, 1),
        "achieved_per_second": round(achieved, 1),
        "achieved_over_quota": round(achieved / args.quota_per_second, 4),
        "duplicates": duplicates,
        # Between WeChat receiving the first and the last message: the pace itself.
        "first_send_after_seconds": round(first - created.timestamp(), 2),
        "sending_rate_per_second": round((accepted - 1) / (last - first), 1),
        "wechat_rejected": stats["rejected"],
        # The service's own CPU per message sent (fan-out included): what one core allows.
        "service_cpu_us_per_message": round(cpu / max(progress["sent"], 1) * 1e6),
        "peak_rss_mb": round(peak_rss(pid, sampled) / 2**20, 1),
        "callbacks": stats["callbacks"] if args.callbacks else None,
    }


FULL: dict[str, Any] = {"recipients": 300_000, "quota_per_second": 2000}
QUICK: dict[str, Any] = {"recipients": 5_000, "quota_per_second": 2000}


async def run_outcome(**params: Any) -> Outcome:
    """For ``python -m bench``: the run with the defaults of :func:`parser` and ``params``."""
    args = parser().parse_args([])
    for name, value in params.items():
        setattr(args, name, value)
    result = await run(args)
    outcome = Outcome("broadcast", peak_rss_mb=result.pop("peak_rss_of_every_process_mb"))
    outcome.add(
        Figure(
            f"{args.recipients:,} recipients: achieved rate / WeChat quota",
            result["achieved_over_quota"],
            "",
            Target(">=", 0.95),
            note=f"{result['achieved_per_second']}/s of {args.quota_per_second}/s, sent at"
            f" {args.pace:g} of the quota",
        ),
        Figure("duplicates WeChat received", result["duplicates"], "", Target("<=", 0)),
        Figure("notifications CPU per message", result["service_cpu_us_per_message"], "µs"),
    )
    return outcome


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__)
    parser.add_argument("--recipients", type=int, default=300_000)
    parser.add_argument("--quota-per-second", type=int, default=2000)
    # Not 1.0: after a stall (a slow database round trip, a busy CPU) the sender catches up on the
    # slots it reserved, and at exactly the quota that catch-up crosses WeChat's minute window.
    parser.add_argument(
        "--pace", type=float, default=0.98, help="send rate as a fraction of the quota"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="WeChat calls in flight")
    parser.add_argument(
        "--callbacks", action="store_true", help="also have WeChat push a delivery report per send"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--logs", default=str(ROOT / "var/log/bench"))
    return parser


def main() -> None:
    args = parser().parse_args()
    result = asyncio.run(run(args))
    print()
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    ok = result["achieved_over_quota"] >= 0.95 and result["duplicates"] == 0
    print(f"\n{'PASS' if ok else 'FAIL'}: rate/Q >= 0.95 and no duplicates")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
