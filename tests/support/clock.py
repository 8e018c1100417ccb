"""A service's clock set by the test (`settings.clock`): the fixture yields a one-item list the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any


@contextlib.contextmanager
def set_clock(settings: Any, start: datetime) -> Iterator[list[datetime]]:
    """The service reads `now[0]` as its time until the block ends (move it with `now[0] = ...`)."""
    now = [start]
    original = settings.clock
    settings.clock = lambda: now[0]
    try:
        yield now
    finally:
        settings.clock = original
