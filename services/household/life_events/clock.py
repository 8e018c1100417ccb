"""The time source of the life events: injectable (a FastAPI dependency), so tests can fix "today"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends


def system_now() -> datetime:
    return datetime.now(UTC)


#: Now, timezone-aware (UTC); override `system_now` in `app.dependency_overrides` to move time.
NowDep = Annotated[datetime, Depends(system_now)]
