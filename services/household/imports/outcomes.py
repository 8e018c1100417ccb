"""What became of each item of a file (imported, refused with its row errors), and the report they add up to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from services.household.households.schemas import HouseholdCreate
from services.household.imports.parsing import HOUSEHOLD_FIELDS, MEMBER_FIELDS, Group, Rejected, RowError
from services.household.imports.schemas import MAX_ERRORS, ImportReport, RowErrorPublic
from shared.errors import Conflict, Forbidden, Problem

_MEMBER_FIELD = re.compile(r"members\.(\d+)(?:\.(.+))?")


@dataclass(slots=True)
class Refused:
    """A household refused whole: its own errors (none when a row that could not join it blocked it)."""

    group: Group
    errors: list[RowError]


@dataclass(slots=True)
class Imported:
    group: Group


Outcome = Rejected | Refused | Imported


def payload_of(group: Group) -> HouseholdCreate | list[RowError]:
    """The household's registration body, or the schema's errors on the rows they name."""
    first = group.rows[0].data
    body = {name: first[name] for name in HOUSEHOLD_FIELDS if name in first}
    body["members"] = [{name: row.data[name] for name in MEMBER_FIELDS if name in row.data} for row in group.rows]
    try:
        return HouseholdCreate.model_validate(body)
    except ValidationError as exc:
        errors: list[RowError] = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            if loc[0] == "members" and len(loc) > 2 and loc[1].isdigit():
                errors.append(RowError(group.rows[int(loc[1])].number, group.kk_number, ".".join(loc[2:]),
                                       err["msg"]))
            else:
                errors += [RowError(row.number, group.kk_number, ".".join(loc), err["msg"]) for row in group.rows]
        return errors


def problem_errors(group: Group, exc: Problem) -> list[RowError]:
    """The problem the API would have answered, on the row it names (`members.N.x`) or on every row."""
    rows, kk = group.rows, group.kk_number
    errors: list[RowError] = []
    for item in exc.errors or []:
        name, message = str(item.get("field") or ""), str(item.get("message") or exc.detail)
        if (match := _MEMBER_FIELD.fullmatch(name)) and int(match[1]) < len(rows):
            errors.append(RowError(rows[int(match[1])].number, kk, match[2], message))
        else:
            errors += [RowError(row.number, kk, name or None, message) for row in rows]
    if errors:
        return errors
    field = "kk_number" if isinstance(exc, Conflict) else "posyandu_id" if isinstance(exc, Forbidden) else None
    return [RowError(row.number, kk, field, exc.detail) for row in rows]


class ReportBuilder:
    """Adds outcomes up into the report (its counts, and the first MAX_ERRORS row errors)."""

    def __init__(self, report: ImportReport | None = None) -> None:
        self.report = report or ImportReport()

    def add(self, outcome: Outcome) -> None:
        if isinstance(outcome, Rejected):
            self._rejected_row(outcome)
        elif isinstance(outcome, Refused):
            self._rejected_group(outcome.group, outcome.errors)
        else:
            self.report.rows += len(outcome.group.rows)
            self.report.households_imported += 1
            self.report.members_imported += len(outcome.group.rows)

    def error(self, error: RowError) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < MAX_ERRORS:
            self.report.errors.append(RowErrorPublic(row=error.row, kk_number=error.kk_number, field=error.field,
                                                     message=error.message))

    def _rejected_row(self, item: Rejected) -> None:
        self.report.rows += 1
        self.report.rows_rejected += 1
        for error in item.errors:
            self.error(error)

    def _rejected_group(self, group: Group, errors: list[RowError]) -> None:
        """Every row of the household is refused: its own errors, or that another row of its KK is invalid."""
        self.report.rows += len(group.rows)
        self.report.rows_rejected += len(group.rows)
        self.report.households_rejected += 1
        named = {e.row for e in errors}
        first_invalid = min(named | ({group.blocked_by} if group.blocked_by else set()), default=None)
        for row in group.rows:
            if row.number in named:
                for error in errors:
                    if error.row == row.number:
                        self.error(error)
            else:
                reason = f"row {first_invalid}" if first_invalid is not None else "another row"
                self.error(RowError(row.number, group.kk_number, None,
                                    f"Not imported: {reason} of this KK is invalid"))
