"""Render a Kustomize overlay of deploy/k8s into its documents: ``python -m deploy.k8s.render dev``.

No cluster is needed. The renderer is the first of: ``kubectl kustomize`` (kubectl is on the
project's machines), ``kustomize build``, or kustomize built from its Go module into var/tools
(pinned below) on a machine that has Go but neither of the two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.5.0"  # the Kustomize inside kubectl 1.32
TOOLS = ROOT / "var" / "tools"


def renderer() -> list[str]:
    """The command that renders a kustomization directory given as its last argument."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    built = TOOLS / "kustomize"
    if not built.exists():
        go = shutil.which("go")
        if go is None:
            raise RuntimeError(
                "no Kustomize renderer: install kubectl or kustomize, or Go (to build kustomize"
                f" {KUSTOMIZE_VERSION} from its module)"
            )
        subprocess.run(
            [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            env=os.environ | {"GOBIN": str(TOOLS)},
            check=True,
        )
    return [str(built), "build"]


def render_text(overlay: str) -> str:
    done = subprocess.run(
        [*renderer(), str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rendering overlay {overlay!r} failed:\n{done.stderr}")
    return done.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """The overlay's documents, in the renderer's order."""
    return [doc for doc in yaml.safe_load_all(render_text(overlay)) if doc]


if __name__ == "__main__":
    sys.stdout.write(render_text(sys.argv[1] if len(sys.argv) > 1 else "dev"))
