"""The time source: injectable, so tests move time forward without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

#: Returns the current time, timezone-aware (UTC).
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


async def request_now(request: Request) -> datetime:
    """The current time by the service's clock (settings.clock), for a request."""
    clock: Clock = request.state.settings.clock
    return clock()


NowDep = Annotated[datetime, Depends(request_now)]
