"""``python -m bench all`` runs every benchmark in one go; ``python -m bench lecture`` (or any
name, several at once) runs those.

    uv run python -m bench all                  # full scale: tens of minutes
    uv run python -m bench all --quick          # a smoke run at small scale: a few minutes
    uv run python -m bench online_joins --set api_workers=4 seconds=20

Writes under var/bench/<UTC time>/: report.md (the machine, then each figure next to its target
and the floor measured in the same run, then the peak RSS of every process each benchmark
started), results.json (the same and every step's row) and joins.png (latency against offered
load, the platform and the bare endpoint). Each benchmark starts Kafka and Postgres if they are
not running. Exits 1 when a benchmark could not run; targets not met are in the report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import broadcast, consumers, lecture, online_joins, profiling, roster_import
from bench.common import servers
from bench.machine import describe
from bench.plot import latency_against_load
from bench.results import Outcome, as_json, markdown
from tests.support.servers import ROOT


@dataclass(frozen=True)
class Benchmark:
    run: Callable[..., Awaitable[Outcome]]
    full: dict[str, Any]
    quick: dict[str, Any]


BENCHMARKS = {
    "consumers": Benchmark(consumers.run, consumers.FULL, consumers.QUICK),
    "roster_import": Benchmark(roster_import.run, roster_import.FULL, roster_import.QUICK),
    "online_joins": Benchmark(online_joins.run, online_joins.FULL, online_joins.QUICK),
    "lecture": Benchmark(lecture.run, lecture.FULL, lecture.QUICK),
    "broadcast": Benchmark(broadcast.run_outcome, broadcast.FULL, broadcast.QUICK),
}


def settings(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON (numbers, true/false), else kept as text."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, not {pair!r}")
        try:
            parsed[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed[key] = value
    return parsed


def parameters(name: str, quick: bool, overrides: dict[str, Any]) -> dict[str, Any]:
    bench = BENCHMARKS[name]
    params = dict(bench.quick if quick else bench.full)
    params.update({k: v for k, v in overrides.items() if k in params})
    return params


async def run_all(
    names: list[str], quick: bool, overrides: dict[str, Any], out: Path, profile: bool = False
) -> int:
    known = {k for n in names for k in BENCHMARKS[n].full}
    if unknown := set(overrides) - known:
        raise SystemExit(f"--set: no benchmark chosen takes {', '.join(sorted(unknown))}")
    machine = await describe(servers().pg_admin_dsn)
    machine["scale"] = "quick (smoke run)" if quick else "full"
    outcomes = []
    for name in names:
        params = parameters(name, quick, overrides)
        print(f"[bench] === {name} {params}", flush=True)
        if profile:
            os.environ[profiling.ENVIRONMENT] = str(out / "profiles" / name)
        try:
            outcome = await BENCHMARKS[name].run(**params)
        except Exception as error:  # one benchmark that cannot run must not lose the others
            traceback.print_exc()
            outcome = Outcome(name, error=f"{type(error).__name__}: {error}")
        outcome.notes.insert(0, f"parameters: {params}")
        outcomes.append(outcome)
        for process, peak in sorted(outcome.peak_rss_mb.items()):
            print(f"[bench] {name}: peak RSS {process}: {peak:.1f} MB")
        write(out, machine, outcomes)  # after each: an interrupted run keeps what it measured
        if profile and (profiles := out / "profiles" / name).exists():
            (profiles / "top.txt").write_text(profiling.report(profiles))
    print(markdown(title(out), machine, outcomes))
    print(f"[bench] written to {out}")
    return 1 if any(o.error for o in outcomes) else 0


def write(out: Path, machine: dict[str, str], outcomes: list[Outcome]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(title(out), machine, outcomes), encoding="utf-8")
    (out / "results.json").write_bytes(
        orjson.dumps(as_json(machine, outcomes), option=orjson.OPT_INDENT_2)
    )
    for outcome in outcomes:
        if outcome.benchmark == "online_joins" and outcome.series:
            latency_against_load(
                out / "joins.png",
                outcome.series,
                online_joins.P99_BUDGET_MS,
                "Online joins: latency against offered load",
            )


def title(out: Path) -> str:
    return f"Gonghui benchmarks, {out.name}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=["all", *BENCHMARKS], metavar="benchmark")
    parser.add_argument("--quick", action="store_true", help="small scale: a smoke run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="parameters")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every platform process: <out>/profiles/"
    )
    parser.add_argument("--out", type=Path, help="directory (default var/bench/<UTC time>)")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if "all" in args.names else list(dict.fromkeys(args.names))
    out = args.out or ROOT / "var/bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    sys.exit(asyncio.run(run_all(names, args.quick, settings(args.set), out, args.profile)))


if __name__ == "__main__":
    main()
