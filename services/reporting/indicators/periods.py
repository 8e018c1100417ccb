"""Reporting periods: a month (`YYYY-MM`), a quarter (`YYYY-Qn`) or a year (`YYYY`), as half-open UTC intervals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.errors import BadRequest

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    label: str
    #: First day of the period.
    start: date
    #: First day after the period (exclusive).
    end: date

    @property
    def start_ts(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_ts(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)

    def as_of(self, today: date | None = None) -> date:
        """The day ages and stocks are taken on: the period's last day, or today for a running period."""
        return min(self.end - timedelta(days=1), today or datetime.now(UTC).date())

    def months_back(self, count: int) -> list[str]:
        """The `count` months ending with the period's last month, oldest first (the chart's x axis)."""
        last = _add_months(self.end, -1)
        return [f"{d:%Y-%m}" for d in (_add_months(last, -i) for i in range(count - 1, -1, -1))]

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_period(text: str | None, today: date | None = None) -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`; the current month when absent; 400 for anything else."""
    if not text:
        today = today or datetime.now(UTC).date()
        text = f"{today:%Y-%m}"
    if match := _MONTH.match(text):
        start = date(int(match[1]), int(match[2]), 1)
        return Period(text, start, _add_months(start, 1))
    if match := _QUARTER.match(text):
        start = date(int(match[1]), (int(match[2]) - 1) * 3 + 1, 1)
        return Period(text, start, _add_months(start, 3))
    if match := _YEAR.match(text):
        start = date(int(match[1]), 1, 1)
        return Period(text, start, date(start.year + 1, 1, 1))
    raise BadRequest("period must be YYYY-MM, YYYY-Qn or YYYY.", errors=[
        {"field": "query.period", "message": "expected YYYY-MM, YYYY-Qn or YYYY", "type": "value_error"}])
