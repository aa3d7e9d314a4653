"""Each service's OpenAPI document, the contract a department generates its client from, as
published under ``docs/openapi/<service>.json`` (the events' AsyncAPI document is
``shared.events.asyncapi``'s).

    python -m deploy.openapi          write them
    python -m deploy.openapi --check  exit 1 naming each document that differs from the code

The test suite runs the check, so a change to a route that is not published fails there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("membership", "mutual_aid", "training", "notifications", "union_funds")
OPENAPI_DIR = ROOT / "docs" / "openapi"


def openapi(service: str) -> dict[str, Any]:
    """The service's live OpenAPI document, from its app as deployed (default settings)."""
    main = importlib.import_module(f"services.{service}.main")
    document: dict[str, Any] = main.build(main.Settings()).openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def documents() -> dict[Path, str]:
    return {OPENAPI_DIR / f"{service}.json": render(openapi(service)) for service in SERVICES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in documents().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        names = ", ".join(map(str, stale))
        print(f"{names} differ from the code: run python -m deploy.openapi", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
