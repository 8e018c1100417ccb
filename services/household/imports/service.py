"""Importing households: each KK registered as the API would, in its own savepoint, errors reported per row."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Callable

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.households.schemas import HouseholdCreate
from services.household.households.service import register
from services.household.imports.parsing import HOUSEHOLD_FIELDS, MEMBER_FIELDS, Group, Item, Rejected, RowError
from services.household.imports.schemas import MAX_ERRORS, ImportReport, RowErrorPublic
from services.household.needs.service import refresh_needs
from services.household.tables import KnownPosyandu, KnownRegion
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Problem, ValidationFailed

#: Posyandu and villages held for the whole import (a few hundred at most in a real file).
MAX_PINNED = 2000
_MEMBER_FIELD = re.compile(r"members\.(\d+)(?:\.(.+))?")


class _Report:
    def __init__(self) -> None:
        self.report = ImportReport()

    def error(self, error: RowError) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < MAX_ERRORS:
            self.report.errors.append(RowErrorPublic(row=error.row, kk_number=error.kk_number, field=error.field,
                                                     message=error.message))

    def rejected_row(self, item: Rejected) -> None:
        self.report.rows += 1
        self.report.rows_rejected += 1
        for error in item.errors:
            self.error(error)

    def rejected_group(self, group: Group, errors: list[RowError]) -> None:
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

    def imported(self, group: Group) -> None:
        self.report.rows += len(group.rows)
        self.report.households_imported += 1
        self.report.members_imported += len(group.rows)


def _payload(group: Group) -> HouseholdCreate | list[RowError]:
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


def _problem_errors(group: Group, exc: Problem) -> list[RowError]:
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


async def _import_group(session: AsyncSession, principal: Principal, group: Group, report: _Report,
                        pinned: dict[object, object]) -> None:
    errors = [error for row in group.rows for error in row.errors]
    if errors or group.blocked_by is not None:
        report.rejected_group(group, errors)
        return
    payload = _payload(group)
    if isinstance(payload, list):
        report.rejected_group(group, payload)
        return
    if len(pinned) < MAX_PINNED:
        await _pin(session, payload, pinned)
    try:
        async with session.begin_nested():
            household, members = await register(session=session, principal=principal, payload=payload)
            await refresh_needs(session, household, registered=members)
    except Problem as exc:
        report.rejected_group(group, _problem_errors(group, exc))
    except IntegrityError:
        # A concurrent registration took the KK or a NIK between the check and the insert.
        report.rejected_group(group, [RowError(row.number, group.kk_number, None,
                                               "Conflicts with a household registered at the same time")
                                      for row in group.rows])
    else:
        report.imported(group)


async def _pin(session: AsyncSession, payload: HouseholdCreate, pinned: dict[object, object]) -> None:
    """Holds the household's posyandu and village (keys already validated, so a bad one never reaches a query)."""
    for table, key in ((KnownPosyandu, payload.posyandu_id), (KnownRegion, payload.village_code)):
        if (table, key) not in pinned:
            pinned[(table, key)] = await session.get(table, key)


async def import_households(*, session: AsyncSession, principal: Principal, items: AsyncIterable[Item],
                            on_progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Registers every valid household of the file; a household with any invalid row is refused whole.

    Each household goes in (with its events and detected needs) in its own savepoint of the caller's
    transaction, so a refused one leaves nothing behind; the caller commits the valid ones together.
    """
    report = _Report()
    # Holding the posyandu and village rows keeps them in the session's (weak) identity map, so `register`
    # finds them there instead of querying both again for every household.
    pinned: dict[object, object] = {}
    async for item in items:
        if isinstance(item, Rejected):
            report.rejected_row(item)
        else:
            await _import_group(session, principal, item, report, pinned)
        if on_progress is not None:
            on_progress(report.report)
    if report.report.rows == 0:
        raise ValidationFailed("The file holds no rows.", errors=[{"field": "body", "message": "no rows"}])
    return report.report
