"""``python -m services.<name>``: run one service with uvicorn, configured from its environment."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.masking import setup_logging
from shared.settings import ServiceSettings


def serve(build: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings) -> None:
    setup_logging()
    uvicorn.run(
        build(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep our masking log handler
        access_log=False,
    )
