"""The PNG of latency against offered load (joins: the platform and the bare endpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server

import matplotlib.pyplot as plt


def latency_against_load(
    path: Path, curves: dict[str, list[dict[str, Any]]], budget_ms: float, title: str
) -> None:
    """One line per curve and quantile: p50 dashed, p99 solid, on a log latency axis."""
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for name, rows in curves.items():
        rows = sorted(rows, key=lambda r: r["offered"])
        offered = [r["offered"] for r in rows]
        (line,) = axes.plot(offered, [r["p99_ms"] for r in rows], marker="o", label=f"{name} p99")
        axes.plot(
            offered,
            [r["p50_ms"] for r in rows],
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p50",
        )
    axes.axhline(budget_ms, color="grey", linewidth=0.8, label=f"budget {budget_ms:g} ms")
    axes.set_yscale("log")
    axes.set_xlabel("offered load (requests/s)")
    axes.set_ylabel("latency (ms, from the scheduled send)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
