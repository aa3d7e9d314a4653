"""CPU profiles of the platform's processes while a benchmark runs (`python -m bench --profile`).

py-spy samples each process the benchmark started (uvicorn's workers included) from the moment the
platform is ready until the benchmark ends, and writes collapsed stacks (``<process>.txt``, which
flamegraph.pl or speedscope draw). :func:`summarise` turns collapsed stacks into the functions that
cost most, as shares of the samples: multiplied by the process's CPU per event (in the report),
the cost of each function per event.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
ENVIRONMENT = "GONGHUI_BENCH_PROFILE"  # where profiles go; unset: none taken
# On every stack, so on top of every list: the event loop, the interpreter's start, py-spy's
# process frame.
PLUMBING = (
    "asyncio/",
    "runpy.py",
    "<frozen ",
    "process ",
    "uvloop/",
    "uvicorn/",
    "__main__.py",
    "shared/serve.py",
    "shared/supervision.py",
)
RATE = 97  # samples a second: not a multiple of a 10 ms timer, so it does not beat with one


@dataclass(frozen=True)
class Cost:
    function: str
    inclusive: float  # share of the samples with the function anywhere on the stack
    own: float  # share of the samples with the function on top


def summarise(
    collapsed: str, top: int = 15, skip: tuple[str, ...] = (), by_own: bool = False
) -> list[Cost]:
    """The ``top`` functions by inclusive (or, ``by_own``, own) share of ``collapsed`` (py-spy's
    raw format: one ``frame;frame;... count`` line per stack, root first), leaving out frames
    containing any of ``skip`` (e.g. the event loop's own frames, which are on every stack)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [f for f in stack.split(";") if not any(s in f for s in skip)]
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples
    if not total:
        return []
    ranked = (own if by_own else inclusive).most_common(top)
    return [Cost(frame, inclusive[frame] / total, own[frame] / total) for frame, _ in ranked]


@contextmanager
def profiled(processes: dict[str, int], out: Path) -> Iterator[None]:
    """py-spy on each process (and its children) until the block ends."""
    out.mkdir(parents=True, exist_ok=True)
    recorders = []
    for name, pid in processes.items():
        command = [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
        command += ["--rate", str(RATE), "--format", "raw", "-o", str(out / f"{name}.txt")]
        recorders.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    try:
        yield
    finally:
        for recorder in recorders:  # py-spy writes its file on SIGINT
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()


def report(out: Path, top: int = 15) -> str:
    """The top functions of every profile in ``out``, as text."""
    lines = []
    for path in sorted(out.glob("*.txt")):
        if path.name == "top.txt":
            continue
        collapsed = path.read_text(errors="replace")
        for by_own in (False, True):
            ranking = "own (on top of the stack)" if by_own else "inclusive"
            lines.append(f"== {path.stem}, by {ranking} share of samples: inclusive own")
            for cost in summarise(collapsed, top, PLUMBING, by_own):
                lines.append(f"{cost.inclusive:6.1%} {cost.own:6.1%}  {cost.function}")
    return "\n".join(lines) + "\n"
