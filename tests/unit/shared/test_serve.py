"""What ``shared.serve`` does to an HTTP process before it answers."""

from __future__ import annotations

import gc

import pytest

from shared import serve


def test_an_http_process_freezes_what_start_up_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # A full collection walking every module and route took ~30 ms here, on whatever request
    # it landed: frozen, start-up's objects are never walked again.
    monkeypatch.setenv(serve.SERVICE_MODULE, "services.union_funds.main")
    monkeypatch.setattr(serve, "setup_logging", lambda: None)  # the test run's logging stays
    gc.unfreeze()
    threshold = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's own; an earlier test's consumer may have raised it
    try:
        serve.app()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] > 700
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
