"""Waiting in tests for what happens asynchronously (events consumed, relays leading, servers started): one helper.

Never assert timings on this loaded machine: poll with `eventually` and a generous timeout instead.
"""

from __future__ import annotations

import asyncio
import reprlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

#: Generous: the session's topics may hold a backlog (the household import tests put some 10,000 households on the
#: household topic) that a consumer works through before it sees a test's own events.
TIMEOUT = 240.0
INTERVAL = 0.05

#: The last value in a failure message, cut short (a check may return a long list or a whole response).
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 300


@overload
async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = TIMEOUT, *,
                     interval: float = INTERVAL) -> T: ...


@overload
async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = TIMEOUT, *,
                     until: Callable[[T], bool], interval: float = INTERVAL) -> T: ...


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = TIMEOUT, *,
                     until: Callable[[Any], bool] = bool, interval: float = INTERVAL) -> Any:
    """Call `check` every `interval` seconds until its value is truthy (or satisfies `until`) and return that value;
    after `timeout` seconds fail, naming what it waited for and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await check()
        if until(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last seen: {_short.repr(seen)})")
        await asyncio.sleep(interval)
