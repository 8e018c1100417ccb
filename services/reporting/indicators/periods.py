"""Reporting periods: a month (`YYYY-MM`), a quarter (`YYYY-Qn`) or a year (`YYYY`), as half-open UTC intervals.

Years run from 1900 to 9998: no report is asked for before 1900, and a period's end (the first day after it) and
the months a timeline reaches back (at most 36) must stay within the dates Python can hold (years 1 to 9999).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.clock import system_clock, today_by
from shared.errors import ValidationFailed

FIRST_YEAR, LAST_YEAR = 1900, 9998
# ASCII digits only (`\d` would take any script's digits), and `\Z`, since `$` also matches before a final newline.
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])\Z")
_QUARTER = re.compile(r"([0-9]{4})-Q([1-4])\Z")
_YEAR = re.compile(r"([0-9]{4})\Z")


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
    #: Today by the reporting clock (settings.clock): a running period's stocks and ages are taken on it.
    today: date

    @property
    def start_ts(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_ts(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)

    def as_of(self) -> date:
        """The day ages and stocks are taken on: the period's last day, or today for a running period."""
        return min(self.end - timedelta(days=1), self.today)

    def months_back(self, count: int) -> list[str]:
        """The `count` months ending with the period's last month, oldest first (the chart's x axis)."""
        last = _add_months(self.end, -1)
        return [f"{d:%Y-%m}" for d in (_add_months(last, -i) for i in range(count - 1, -1, -1))]

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(f"period {message}.", errors=[
        {"field": "query.period", "message": message, "type": "value_error"}])


def parse_period(text: str | None, today: date | None = None) -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`; the current month when absent; 422 for anything else. `today`: by the
    service's clock (a request's TodayDep); the system's date only for callers without one (scripts, bench)."""
    today = today or today_by(system_clock)
    if not text:
        text = f"{today:%Y-%m}"
    match = _MONTH.match(text) or _QUARTER.match(text) or _YEAR.match(text)
    if match is None:
        raise _invalid("must be YYYY-MM, YYYY-Qn or YYYY")
    year = int(match[1])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise _invalid(f"must be a year from {FIRST_YEAR} to {LAST_YEAR}")
    if match.re is _MONTH:
        start = date(year, int(match[2]), 1)
        return Period(text, start, _add_months(start, 1), today)
    if match.re is _QUARTER:
        start = date(year, (int(match[2]) - 1) * 3 + 1, 1)
        return Period(text, start, _add_months(start, 3), today)
    return Period(text, date(year, 1, 1), date(year + 1, 1, 1), today)
