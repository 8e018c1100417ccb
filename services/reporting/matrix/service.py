"""The cross-agency matrix: one row per agency and field, the field's indicators and the agency's referrals.

An agency's row is computed over the part of the requested region it is responsible for: the region itself
when the agency's jurisdiction contains it, the jurisdiction when it lies inside the region.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.access import Audience
from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import FIELD_INDICATORS, PARTITIONS, REFERRALS, Indicator
from services.reporting.indicators.complementary import Hierarchy, protect, protect_rows
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.indicators.schemas import Column, ReportTable
from services.reporting.indicators.service import finish_row, indicator_columns, region_name_of, text_column
from services.reporting.indicators.suppression import counts_of, with_rates
from services.reporting.summaries import reads
from shared.events.topics import SpmField


def _withheld_referrals(rows: list[tuple[uuid.UUID, str]], referrals: dict[tuple[uuid.UUID, str], Values],
                        threshold: int) -> dict[tuple[uuid.UUID, str], set[str]]:
    """The referral counts withheld per matrix row (agency, field): the small ones, and the agencies of one field
    protect each other as siblings do, since together they make up the region's referrals of that field (taken
    as shown: the safe side); within a row, the outcomes protect each other as parts of those created."""
    counts = counts_of(REFERRALS)
    ids = {row: f"{row[0]}/{row[1]}" for row in rows}  # an agency has a row per field
    values = {ids[row]: referrals.get(row, {}) for row in rows}
    out = {ids[row]: {k for k in counts if (values[ids[row]].get(k) or 0) < threshold} for row in rows}
    added = True
    while added:
        added = protect_rows(values, out, PARTITIONS, threshold)
        for field in {f for _, f in rows}:
            siblings = [ids[row] for row in rows if row[1] == field]
            for k in counts:
                column = {i: int(values[i].get(k) or 0) for i in siblings}
                for i in protect(column, {i for i in siblings if k in out[i]}, parent_withheld=False,
                                 threshold=threshold):
                    out[i].add(k)
                    added = True
    return {row: out[ids[row]] for row in rows}


async def matrix_table(*, session: AsyncSession, audience: Audience, period: Period, lang: str,
                       threshold: int) -> ReportTable:
    fields = [f.value for f in audience.fields]
    agencies = await repository.agencies_in(session=session, prefix=audience.prefix, fields=fields)
    referrals = await reads.referral_values_by_agency(
        session=session, scope=Scope(audience.prefix, len(audience.prefix), period, tuple(fields)))
    areas = {max(audience.prefix, a["jurisdiction_code"], key=len) for a in agencies}

    async def fetch(prefix: str, n: int) -> dict[str, Values]:
        return await reads.stock_values(session=session, scope=Scope(prefix, n, period, tuple(fields)))

    # The areas' cells are the indicator table's: the same regions' counts, withheld alike.
    hierarchy = Hierarchy(fetch, counts_of(i for f in audience.fields for i in FIELD_INDICATORS[f]), threshold)
    await hierarchy.within(audience.prefix, max((len(a) for a in areas), default=0))  # a statement per level
    by_area: dict[str, tuple[Values, set[str]]] = {}
    for area in sorted(areas):
        withheld = await hierarchy.withheld(area) if audience.suppress else set()
        by_area[area] = (await hierarchy.values(area), withheld)
    matrix_rows: list[tuple[uuid.UUID, str]] = [(a["id"], f.value) for a in agencies for f in SpmField
                                                if f.value in a["spm_fields"] and f.value in fields]
    referral_withheld = _withheld_referrals(matrix_rows, referrals, threshold) if audience.suppress else {}
    rows: list[dict[str, Any]] = []
    used: dict[str, Indicator] = {}  # by key, in the order first used
    for agency in agencies:
        for field in (f for f in SpmField if f.value in agency["spm_fields"] and f.value in fields):
            indicators = [*FIELD_INDICATORS[field], *REFERRALS]
            used.update((i.key, i) for i in indicators if i.key not in used)
            area = max(audience.prefix, agency["jurisdiction_code"], key=len)
            # The area's field indicators, and the referrals of this agency only (not the area's).
            key = (agency["id"], field.value)
            area_values, area_withheld = by_area[area]
            values = with_rates({**area_values, **referrals.get(key, {})}, indicators)
            row = {"agency_id": str(agency["id"]), "agency_name": agency["name"], "agency_level": agency["level"],
                   "jurisdiction_code": agency["jurisdiction_code"], "spm_field": field.value,
                   "region_code": area, **values}
            rows.append(finish_row(row, indicators, area_withheld | referral_withheld.get(key, set())))
    columns: list[Column] = [*(text_column(k, lang) for k in ("agency_id", "agency_name", "agency_level",
                                                              "jurisdiction_code", "spm_field", "region_code")),
                             *indicator_columns([i for i in used.values() if i not in REFERRALS], lang),
                             *indicator_columns(REFERRALS, lang)]
    return ReportTable(title="Cross-agency matrix", region=audience.prefix,
                       region_name=await region_name_of(session, audience.prefix), period=period.as_dict(),
                       spm_field=fields[0] if len(fields) == 1 else None,
                       suppression_threshold=threshold if audience.suppress else None, columns=columns, rows=rows)
