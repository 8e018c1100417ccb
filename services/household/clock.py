"""The household service's time source: injectable, so tests move the day forward without waiting for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

#: Returns the current time, timezone-aware (UTC).
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def today_by(clock: Clock) -> date:
    """The day by the clock: the UTC date, as every other date the household service derives (date.today() on
    its UTC servers), so that the sweep and an edit on the same day agree on everyone's age."""
    return clock().astimezone(UTC).date()
