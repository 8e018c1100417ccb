"""The household service's time source: injectable (settings.clock), so tests move the date without waiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request

#: Returns the current time, timezone-aware (UTC).
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


async def request_today(request: Request) -> date:
    """Today (UTC) by the service's clock, for a request."""
    clock: Clock = getattr(request.state.settings, "clock", system_clock)
    return clock().date()


TodayDep = Annotated[date, Depends(request_today)]
