"""Released backbone schema steps are frozen: editing one would make a fresh database differ from
one migrated when the step was released. Change the schema with a new step instead."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared import backbone_schema

RELEASED = {
    0: "161e6c021d17a2bb507ea32cbb7652a7b4d3c417edf093b974f8d802a16ede3a",
    1: "4c527380d1725ce3d6a540f2e3af91dabd8be5959d8d4723e78f3b65065f8b86",
}


def test_released_steps_are_unchanged() -> None:
    for index, expected in RELEASED.items():
        digest = hashlib.sha256(backbone_schema.STEPS[index].encode()).hexdigest()
        assert digest == expected, f"step {index + 1} was edited: add a new step instead"


def test_every_service_runs_every_step() -> None:
    root = Path(__file__).resolve().parents[3]
    for service in ("membership", "mutual_aid", "training", "notifications", "union_funds"):
        text = "".join(
            p.read_text() for p in (root / "services" / service / "migrations").rglob("*.py")
        )
        for index in range(len(backbone_schema.STEPS)):
            name = f"backbone_schema.V{index + 1}"
            assert name in text, f"{service} has no migration running {name}"
