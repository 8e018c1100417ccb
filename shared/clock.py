"""The services' time source: injectable (each service's `settings.clock`), so tests move time forward without
sleeping. Every rule that reads "now" or "today" takes it from here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request

#: Returns the current time, timezone-aware (UTC).
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def today_by(clock: Clock) -> date:
    """The day by the clock: the UTC date, so that a background job (the need sweep) and a request on the same day
    agree on everyone's age."""
    return clock().astimezone(UTC).date()


async def request_now(request: Request) -> datetime:
    """The current time by the service's clock (settings.clock), for a request."""
    clock: Clock = request.state.settings.clock
    return clock()


async def request_today(request: Request) -> date:
    """Today (UTC) by the service's clock, for a request."""
    clock: Clock = getattr(request.state.settings, "clock", system_clock)
    return today_by(clock)


NowDep = Annotated[datetime, Depends(request_now)]
TodayDep = Annotated[date, Depends(request_today)]
