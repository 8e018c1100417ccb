"""Dates and times taken as ISO 8601 text only, as the published schemas say (string, format date or date-time).

Pydantic also reads a number as a Unix time: `?since=5` or `"birth_date": 0` would be 1970-01-01, a value the
client never meant and the contract does not allow. These types refuse a number with a 422 instead.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_ISO = re.compile(r"\s*[+-]?\d{4,}-\d{2}-\d{2}")


def iso_text(value: Any) -> Any:
    """The value unchanged if it is a date, a datetime or text that starts as an ISO 8601 date; ValueError else."""
    if isinstance(value, (date, datetime)) or value is None:
        return value
    if isinstance(value, str) and _ISO.match(value):
        return value
    raise ValueError("must be an ISO 8601 date (YYYY-MM-DD) or date-time, not a number")


#: A date given as YYYY-MM-DD.
IsoDate = Annotated[date, BeforeValidator(iso_text)]
#: A date-time given as ISO 8601 text (YYYY-MM-DDTHH:MM:SS with an offset or Z).
IsoDateTime = Annotated[datetime, BeforeValidator(iso_text)]
#: The same check for an optional value, wrapping the whole `date | None` so the schema stays as it is.
iso_or_none = BeforeValidator(iso_text)
