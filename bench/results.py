"""What a benchmark run produces: figures next to their targets and floors, rendered as a markdown
table and as JSON. Pure: no I/O, so the rendering is unit-tested."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# The memory target, "<= 150 MB for every process of every benchmark", in MB of 10^6 bytes.
RSS_TARGET_MB = 150.0


@dataclass(frozen=True)
class Target:
    op: Literal["<=", ">="]
    value: float

    def holds(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {number(self.value)}"


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``floor`` is the same work measured in the same run without the
    platform (a bare COPY, a bare endpoint...): how far the platform is from what the machine does.
    ``value`` None means it could not be measured in this run (``note`` says why)."""

    name: str
    value: float | None
    unit: str
    target: Target | None = None
    floor: float | None = None
    floor_note: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.value is None or math.isnan(self.value):
            return False
        return self.target.holds(self.value)


@dataclass
class Outcome:
    """What one benchmark returns: its figures, the peak RSS of every process it started (MB),
    series for plots (e.g. latency against offered load) and notes for the reader."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def rss_figure(self) -> Figure | None:
        """The largest process the benchmark ran, against the memory target every process must
        meet; the load generator's own process included, since each benchmark runs in one of its
        own (``python -m bench --apart``) and its peak is that benchmark's alone."""
        if not self.peak_rss_mb:
            return None
        process, peak = max(self.peak_rss_mb.items(), key=lambda item: item[1])
        return Figure(
            "largest process peak RSS",
            peak,
            "MB",
            Target("<=", RSS_TARGET_MB),
            note=process,
        )


def number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: ""}[met]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown(title: str, machine: dict[str, str], outcomes: list[Outcome]) -> str:
    lines = [f"# {title}", "", "| machine | |", "|---|---|"]
    lines += [_row(k, v) for k, v in machine.items()]
    lines += [
        "",
        "| benchmark | figure | measured | target | floor (same run) | verdict | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        figures = list(outcome.figures)
        rss = outcome.rss_figure()
        if rss is not None:
            figures.append(rss)
        if outcome.error:
            lines.append(_row(outcome.benchmark, "failed", "", "", "", "**failed**", outcome.error))
        for f in figures:
            floor = f"{number(f.floor)} {f.unit}".strip() if f.floor is not None else ""
            if f.floor_note:
                floor = f"{floor} ({f.floor_note})" if floor else f.floor_note
            target = f"{f.target} {f.unit}" if f.target else ""
            measured = f"{number(f.value)} {f.unit}".strip()
            lines.append(
                _row(outcome.benchmark, f.name, measured, target, floor, _verdict(f.met), f.note)
            )
    lines += ["", "## Peak RSS of every process started (MB)", ""]
    for outcome in outcomes:
        if outcome.peak_rss_mb:
            peaks = ", ".join(f"{p} {number(mb)}" for p, mb in sorted(outcome.peak_rss_mb.items()))
            lines.append(f"- {outcome.benchmark}: {peaks}")
    notes = [(o.benchmark, n) for o in outcomes for n in o.notes]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {benchmark}: {note}" for benchmark, note in notes]
    return "\n".join(lines) + "\n"


def outcome_json(o: Outcome) -> dict[str, Any]:
    def figure(f: Figure) -> dict[str, Any]:
        data = asdict(f)
        data["target"] = {"op": f.target.op, "value": f.target.value} if f.target else None
        data["met"] = f.met
        return data

    return {
        "benchmark": o.benchmark,
        "error": o.error,
        "figures": [figure(f) for f in o.figures],
        "peak_rss_mb": o.peak_rss_mb,
        "series": o.series,
        "notes": o.notes,
    }


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    """The :class:`Outcome` :func:`outcome_json` wrote (e.g. by the process that ran it)."""

    def figure(f: dict[str, Any]) -> Figure:
        fields = {k: v for k, v in f.items() if k != "met"}
        target = f["target"]
        fields["target"] = Target(target["op"], target["value"]) if target else None
        return Figure(**fields)

    return Outcome(
        data["benchmark"],
        figures=[figure(f) for f in data["figures"]],
        peak_rss_mb=data["peak_rss_mb"],
        series=data["series"],
        notes=data["notes"],
        error=data["error"],
    )


def as_json(machine: dict[str, str], outcomes: list[Outcome]) -> dict[str, Any]:
    return {"machine": machine, "benchmarks": [outcome_json(o) for o in outcomes]}
