"""A container's health check: ``python health.py [URL]``, exit 0 when the URL answers 2xx.

Without a URL it asks ``/readyz`` of this container's service (``$GONGHUI_SERVICE``) on the port
its settings name (``GONGHUI_<SERVICE>_HTTP_PORT``). Standard library only: it runs every few
seconds in every container, so it must start fast.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def readyz_url() -> str:
    service = os.environ["GONGHUI_SERVICE"]
    port = os.environ.get(f"GONGHUI_{service.upper()}_HTTP_PORT")
    if port is None:  # the service's default port, from its settings (slower: imports them)
        import importlib

        port = str(importlib.import_module(f"services.{service}.main").Settings().http_port)
    return f"http://127.0.0.1:{port}/readyz"


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else readyz_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            return 0 if answer.status < 300 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
