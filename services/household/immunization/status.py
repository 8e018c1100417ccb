"""A child's immunisation status, computed from the doses given and the schedule in force on the day (pure).

This is the one place the rule lives; the need rules, the profile the household service publishes, the due list
and the daily sweep all call :func:`status`. Its API is stable: ``status(birth_date, doses, on=..., schedule=...,
village_code=...)`` returns an :class:`ImmunizationStatus`.

For each dose of the version in force on ``on`` (and of the child's region) that the child has not had by ``on``:

* its **due day** is the day the child reaches ``due_age``, or, if later, the previous dose's day plus
  ``min_interval_days``; before the due day the dose is *upcoming* (not listed);
* from the due day it is **due**, until the child reaches ``overdue_age`` (shifted by as many days as the due day
  was); from then it is **overdue**;
* after ``latest_age`` it is **missed**: it is no longer given, so no catch-up can fix it.

``complete-for-age`` means nothing is overdue. Missed doses are listed but do not make a child incomplete: the
status says whether something can still be done (the need a kader acts on). ``unknown`` means the status cannot
be computed: no version is in force on the day, or no dose at all is recorded for the child by then (the history
was not entered yet: an empty record is not evidence that a child had nothing). Doses given after ``on`` are
ignored, so a past day's status is what it was then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from services.household.immunization.schedule import Schedule, reached

StatusCode = Literal["complete-for-age", "incomplete", "unknown"]


@dataclass(frozen=True, slots=True)
class GivenDose:
    """A dose the child had: vaccine code, dose number and the day it was given."""

    vaccine: str
    dose: int
    given_on: date


@dataclass(frozen=True, slots=True)
class PendingDose:
    """A dose of the schedule the child has not had: when it fell due and when it is (or was) overdue."""

    vaccine: str
    dose: int
    due_on: date
    overdue_on: date
    latest_on: date | None = None


@dataclass(frozen=True, slots=True)
class ImmunizationStatus:
    status: StatusCode
    #: The schedule version the status was computed with (None: none in force on the day).
    schedule_version: str | None
    #: Due on the day and not yet overdue: give at this opening day.
    due: tuple[PendingDose, ...] = field(default=())
    #: Past their overdue age and still possible: the child is incomplete for age.
    overdue: tuple[PendingDose, ...] = field(default=())
    #: Past their latest age: no longer given.
    missed: tuple[PendingDose, ...] = field(default=())

    @property
    def complete_for_age(self) -> bool:
        return self.status == "complete-for-age"


def status(birth_date: date, doses: Iterable[GivenDose], *, on: date, schedule: Schedule,
           village_code: str | None = None) -> ImmunizationStatus:
    """The child's status on ``on`` by the schedule version in force that day (see the module's docstring)."""
    version = schedule.in_force(on)
    if version is None:
        return ImmunizationStatus(status="unknown", schedule_version=None)
    given = {(d.vaccine, d.dose): d.given_on for d in doses if d.given_on <= on}
    due: list[PendingDose] = []
    overdue: list[PendingDose] = []
    missed: list[PendingDose] = []
    for row in version.rows:
        if (row.vaccine, row.dose) in given or not row.applies_in(village_code):
            continue
        due_on = reached(birth_date, row.due_age)
        previous = given.get((row.vaccine, row.dose - 1))
        if previous is not None and row.min_interval_days is not None:
            due_on = max(due_on, previous + timedelta(days=row.min_interval_days))
        if on < due_on:
            continue
        window = reached(birth_date, row.overdue_age) - reached(birth_date, row.due_age)
        pending = PendingDose(vaccine=row.vaccine, dose=row.dose, due_on=due_on, overdue_on=due_on + window,
                              latest_on=reached(birth_date, row.latest_age) if row.latest_age else None)
        if pending.latest_on is not None and on > pending.latest_on:
            missed.append(pending)
        elif on >= pending.overdue_on:
            overdue.append(pending)
        else:
            due.append(pending)
    if not given:
        code: StatusCode = "unknown"
    else:
        code = "incomplete" if overdue else "complete-for-age"
    return ImmunizationStatus(status=code, schedule_version=version.version, due=tuple(due),
                              overdue=tuple(overdue), missed=tuple(missed))
