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

Each benchmark runs in a process of its own (``--apart``), which imports only that benchmark's
code, so the load generator's peak RSS in its report (the kernel's high-water mark, VmHWM) is what
that benchmark made it hold, never a peak carried over from an earlier one in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import profiling
from bench.processes import ROOT
from bench.results import Outcome, as_json, markdown, outcome_from_json, outcome_json


@dataclass(frozen=True)
class Benchmark:
    run: Callable[..., Awaitable[Outcome]]
    full: dict[str, Any]
    quick: dict[str, Any]


# name -> (module, its coroutine returning an Outcome); a module is imported only by the process
# that needs it: importing them all (the services, matplotlib) was 160 MB before any work.
BENCHMARKS = {
    "consumers": ("bench.consumers", "run"),
    "roster_import": ("bench.roster_import", "run"),
    "online_joins": ("bench.online_joins", "run"),
    "lecture": ("bench.lecture", "run"),
    "broadcast": ("bench.broadcast", "run_outcome"),
}


def benchmark(name: str) -> Benchmark:
    module_name, function = BENCHMARKS[name]
    module = importlib.import_module(module_name)
    return Benchmark(getattr(module, function), module.FULL, module.QUICK)


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
    bench = benchmark(name)
    params = dict(bench.quick if quick else bench.full)
    params.update({k: v for k, v in overrides.items() if k in params})
    return params


async def run_all(
    names: list[str], quick: bool, overrides: dict[str, Any], out: Path, profile: bool = False
) -> int:
    from bench.common import servers
    from bench.machine import describe

    known = {k for n in names for k in benchmark(n).full}
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
        outcome = await run_apart(name, params)
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


async def run_apart(name: str, params: dict[str, Any]) -> Outcome:
    """The benchmark run by ``python -m bench --apart`` in a process of its own: its outcome,
    or an error if that process ended without one."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        answer = Path(scratch) / "outcome.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench", "--apart", name, orjson.dumps(params).decode(),
            str(answer), cwd=ROOT,
        )  # fmt: skip
        try:
            code = await process.wait()
        except BaseException:  # interrupted: the benchmark's process goes too, and as for
            # Ctrl-C (SIGINT, not SIGTERM) its clean-up stops the platform it started
            process.send_signal(signal.SIGINT)
            await process.wait()
            raise
        if not answer.exists():
            return Outcome(name, error=f"its process exited with {code} before reporting")
        return outcome_from_json(orjson.loads(answer.read_bytes()))


async def run_one(name: str, params: dict[str, Any]) -> Outcome:
    try:
        return await benchmark(name).run(**params)
    except Exception as error:  # one benchmark that cannot run must not lose the others
        traceback.print_exc()
        return Outcome(name, error=f"{type(error).__name__}: {error}")


def write(out: Path, machine: dict[str, str], outcomes: list[Outcome]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(title(out), machine, outcomes), encoding="utf-8")
    (out / "results.json").write_bytes(
        orjson.dumps(as_json(machine, outcomes), option=orjson.OPT_INDENT_2)
    )
    for outcome in outcomes:
        if outcome.benchmark == "online_joins" and outcome.series:
            from bench.online_joins import P99_BUDGET_MS
            from bench.plot import latency_against_load  # matplotlib: 50 MB, only for the plot

            latency_against_load(
                out / "joins.png",
                outcome.series,
                P99_BUDGET_MS,
                "Online joins: latency against offered load",
            )


def title(out: Path) -> str:
    return f"Gonghui benchmarks, {out.name}"


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--apart"]:  # the process run_apart starts: name, parameters, answer
        name, params, answer = arguments[1:]
        outcome = asyncio.run(run_one(name, orjson.loads(params)))
        Path(answer).write_bytes(orjson.dumps(outcome_json(outcome)))
        return
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=["all", *BENCHMARKS], metavar="benchmark")
    parser.add_argument("--quick", action="store_true", help="small scale: a smoke run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="parameters")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every platform process: <out>/profiles/"
    )
    parser.add_argument("--out", type=Path, help="directory (default var/bench/<UTC time>)")
    args = parser.parse_args(arguments)
    names = list(BENCHMARKS) if "all" in args.names else list(dict.fromkeys(args.names))
    out = args.out or ROOT / "var/bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    sys.exit(asyncio.run(run_all(names, args.quick, settings(args.set), out, args.profile)))


if __name__ == "__main__":
    main()
