"""Concurrent callers' small writes as one statement (audit rows, request nonces).

Each caller hands over its item and waits until the batch carrying it is done; the items that
arrive while one batch runs go together in the next. No item waits for a timer, so a lone
request costs what a single statement costs, and under load one round trip serves many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalesced(Generic[T, R]):
    """``await coalesced(item)`` runs ``run(items)`` for a batch holding it and answers the
    result at the item's place; a failed batch raises its error in every caller of it."""

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._run = run
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results: Sequence[R] | BaseException = await self._run(
                        [item for item, _ in batch]
                    )
                except Exception as exc:
                    results = exc
                for i, (_, answer) in enumerate(batch):
                    if answer.done():
                        continue  # its request was cancelled
                    if isinstance(results, BaseException):
                        answer.set_exception(results)
                    else:
                        answer.set_result(results[i])
        finally:
            self._flushing = None
