"""Watching the event loop from a test: how long it went without running a ready task."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def loop_gaps(tick: float = 0.01) -> AsyncIterator[list[float]]:
    """The gaps between a ticker's wake-ups while the block runs (a long one means something held the loop)."""
    gaps: list[float] = []
    finished = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not finished.is_set():
            await asyncio.sleep(tick)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    watching = asyncio.create_task(ticker())
    await asyncio.sleep(0.1)  # the ticker runs before the block starts
    try:
        yield gaps
    finally:
        finished.set()
        await watching
