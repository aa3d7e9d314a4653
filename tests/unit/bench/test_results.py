"""The report: each figure next to its target and floor, verdicts, peak RSS, JSON."""

from __future__ import annotations

import math
from array import array

import httpx
import orjson

from bench.load import Refused, Step, open_loop, percentile
from bench.profiling import summarise
from bench.results import (
    Figure,
    Outcome,
    Target,
    as_json,
    markdown,
    number,
    outcome_from_json,
    outcome_json,
)

MACHINE = {"CPU": "Test CPU @ 2.0GHz", "cores": "2 logical"}


def outcome() -> Outcome:
    peaks = {"membership": 120.4, "membership child 7": 160.2, "load generator (bench)": 190.0}
    result = Outcome("online_joins", peak_rss_mb=peaks)
    result.add(
        Figure(
            "highest rate",
            385,
            "joins/s",
            Target(">=", 1000),
            floor=2200,
            floor_note="bare endpoint",
        ),
        Figure("ratio", 0.175, "", Target(">=", 0.5)),
        Figure("CPU per join", 1.5, "ms", Target("<=", 2)),
        Figure("caught up", None, "s", note="not | within 120 s"),
    )
    return result


def rows(report: str, benchmark: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in report.splitlines()
        if line.startswith(f"| {benchmark} |")
    ]


def test_each_figure_is_a_row_with_its_target_floor_and_verdict() -> None:
    table = rows(markdown("run", MACHINE, [outcome()]), "online_joins")
    by_name = {row[1]: row for row in table}
    assert by_name["highest rate"][2:6] == [
        "385 joins/s",
        "≥ 1,000 joins/s",
        "2,200 joins/s (bare endpoint)",
        "**not met**",
    ]
    assert by_name["ratio"][5] == "**not met**"
    assert by_name["CPU per join"][5] == "met"
    assert by_name["caught up"][2] == "— s"
    assert by_name["caught up"][6] == "not \\| within 120 s"


def test_the_largest_process_is_held_to_the_memory_target() -> None:
    table = rows(markdown("run", MACHINE, [outcome()]), "online_joins")
    rss = next(row for row in table if row[1] == "largest process peak RSS")
    assert rss[2:7] == ["190 MB", "≤ 150 MB", "", "**not met**", "load generator (bench)"]
    lean = Outcome("online_joins", peak_rss_mb={"membership": 120.4, "load generator": 90.0})
    rss = next(
        r
        for r in rows(markdown("run", MACHINE, [lean]), "online_joins")
        if r[1].startswith("largest")
    )
    assert rss[2:7] == ["120 MB", "≤ 150 MB", "", "met", "membership"]


def test_the_machine_and_every_process_peak_are_listed() -> None:
    report = markdown("run", MACHINE, [outcome()])
    assert "| CPU | Test CPU @ 2.0GHz |" in report
    assert (
        "- online_joins: load generator (bench) 190, membership 120, membership child 7 160"
        in report
    )


def test_a_benchmark_that_failed_says_so() -> None:
    report = markdown("run", MACHINE, [Outcome("lecture", error="RuntimeError: boom")])
    assert rows(report, "lecture") == [
        ["lecture", "failed", "", "", "", "**failed**", "RuntimeError: boom"]
    ]


def test_json_carries_the_figures_verdicts_and_series() -> None:
    result = outcome()
    result.series = {"platform": [{"offered": 50, "p99_ms": 12.5}]}
    data = orjson.loads(orjson.dumps(as_json(MACHINE, [result])))
    bench = data["benchmarks"][0]
    first = bench["figures"][0]
    assert first["target"] == {"op": ">=", "value": 1000}
    assert first["met"] is False
    assert first["floor"] == 2200
    assert bench["figures"][3]["value"] is None
    assert bench["series"]["platform"][0]["p99_ms"] == 12.5
    assert data["machine"] == MACHINE


def test_an_outcome_comes_back_whole_from_the_process_that_ran_it() -> None:
    result = outcome()
    result.series = {"platform": [{"offered": 50, "p99_ms": 12.5}]}
    result.notes = ["parameters: {}"]
    again = outcome_from_json(orjson.loads(orjson.dumps(outcome_json(result))))
    assert again == result
    failed = Outcome("lecture", error="RuntimeError: boom")
    assert outcome_from_json(orjson.loads(orjson.dumps(outcome_json(failed)))) == failed


def test_an_unmeasured_figure_never_meets_its_target() -> None:
    assert Figure("x", None, "s", Target("<=", 60)).met is False
    assert Figure("x", math.nan, "s", Target("<=", 60)).met is False
    assert Figure("x", 60, "s", Target("<=", 60)).met is True
    assert Figure("x", 1, "s").met is None


def test_numbers_are_rounded_to_what_the_figure_can_say() -> None:
    assert [number(v) for v in (234.94, 20.54, 1.234, 0.0123, 3.0, None)] == [
        "235",
        "20.5",
        "1.23",
        "0.0123",
        "3",
        "—",
    ]


def test_percentiles_and_rates_of_a_step() -> None:
    latencies = array("d", range(1, 101))
    step = Step(offered=100, seconds=1, latencies_ms=latencies, elapsed=2)
    assert step.p50 == 51
    assert step.p99 == 100
    assert step.achieved == 50
    assert math.isnan(percentile([], 0.99))


def test_a_profile_is_summarised_by_share_of_samples() -> None:
    collapsed = "\n".join(
        [
            "run (asyncio/base_events.py:1);handle (api.py:10);sign (auth.py:5) 30",
            "run (asyncio/base_events.py:1);handle (api.py:10);insert (db.py:7) 50",
            "run (asyncio/base_events.py:1);relay (outbox.py:3) 20",
            "not a stack line",
        ]
    )
    costs = {c.function: c for c in summarise(collapsed, top=10, skip=("asyncio/",))}
    assert "run (asyncio/base_events.py:1)" not in costs
    assert costs["handle (api.py:10)"].inclusive == 0.8
    assert costs["handle (api.py:10)"].own == 0
    assert costs["insert (db.py:7)"].own == 0.5
    assert costs["relay (outbox.py:3)"].inclusive == 0.2


async def test_open_loop_counts_refusals_by_kind_and_keeps_what_was_made() -> None:
    async def send(serial: int) -> str:
        if serial % 2:
            raise Refused("409 already_enrolled")
        return f"m{serial}"

    step = await open_loop(send, rate=100_000, seconds=0, first=0, count=10)
    assert step.errors == 5
    assert step.error_kinds == {"409 already_enrolled": 5}
    assert sorted(step.sent_at()) == ["m0", "m2", "m4", "m6", "m8"]
    assert len(step.latencies_ms) == 5


def test_a_refusal_is_labelled_with_the_status_and_the_problem_code() -> None:
    problem = {"errors": [{"field": "member_id", "code": "not_a_member", "message": "..."}]}
    assert str(Refused.of(httpx.Response(422, json=problem))) == "422 not_a_member"
    assert str(Refused.of(httpx.Response(502, text="bad gateway"))) == "502"


def test_a_profile_can_be_ranked_by_own_share() -> None:
    collapsed = "a (x.py:1);b (x.py:2) 30\na (x.py:1);c (x.py:3) 70"
    assert [c.function for c in summarise(collapsed, top=2, by_own=True)] == [
        "c (x.py:3)",
        "b (x.py:2)",
    ]


def test_throughput_between_two_answers() -> None:
    step = Step(offered=10, seconds=1, answered_at=array("d", [0.0, 0.5, 1.0, 3.0, 5.0]))
    assert step.throughput(0, 2) == 2.0
    assert step.throughput(2, 4) == 0.5
    assert math.isnan(step.throughput(3, 9))
