"""Report tables over the summaries (summaries/reads.py): indicators by region, needs by category, the referral
timeline, rankings."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.access import Audience
from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import PARTITIONS, Indicator, indicators_for
from services.reporting.indicators.complementary import Hierarchy
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.indicators.schemas import Column, ReportTable
from services.reporting.indicators.suppression import counts_of, suppress, with_rates
from services.reporting.summaries import reads
from shared.errors import ValidationFailed

Level = Literal["province", "regency", "district", "village"]
LEVEL_LENGTHS: dict[str, int] = {"province": 2, "regency": 4, "district": 6, "village": 10}

_TEXT_LABELS = {
    "region_code": ("Region code", "Kode wilayah"), "region_name": ("Region", "Wilayah"),
    "spm_field": ("SPM field", "Bidang SPM"), "category": ("Category", "Kategori"),
    "month": ("Month", "Bulan"), "status": ("Status", "Status"),
    "village_code": ("Village code", "Kode desa/kelurahan"), "village_name": ("Village", "Desa/kelurahan"),
    "agency_id": ("Agency id", "Id OPD"), "agency_name": ("Agency", "OPD"), "agency_level": ("Level", "Tingkat"),
    "jurisdiction_code": ("Jurisdiction", "Wilayah kewenangan"), "rank": ("Rank", "Peringkat"),
}
_COUNT_LABELS = {
    "detected": ("Needs detected", "Kebutuhan terdeteksi"), "resolved": ("Needs resolved", "Kebutuhan terselesaikan"),
    "open": ("Needs open at period end", "Kebutuhan terbuka akhir periode"),
    "referrals": ("Referrals created", "Rujukan dibuat"), "open_needs": ("Open needs", "Kebutuhan terbuka"),
}


def text_column(key: str, lang: str) -> Column:
    en, id_ = _TEXT_LABELS[key]
    return Column(key=key, label=id_ if lang == "id" else en, kind="text")


def count_column(key: str, lang: str) -> Column:
    en, id_ = _COUNT_LABELS[key]
    return Column(key=key, label=id_ if lang == "id" else en, kind="count")


def indicator_columns(indicators: list[Indicator], lang: str) -> list[Column]:
    return [Column(key=i.key, label=i.label(lang), kind=i.kind) for i in indicators]


def group_length(prefix: str, by: Level | None) -> int:
    if by is None:
        return len(prefix)
    length = LEVEL_LENGTHS[by]
    if length <= len(prefix):
        raise ValidationFailed(f"by={by} does not break region {prefix or 'national'} down; choose a level below it.",
                               errors=[{"field": "query.by", "message": "must be a level below the region's",
                                        "type": "value_error"}])
    return length


def finish_row(row: dict[str, Any], indicators: list[Indicator], withheld: set[str]) -> dict[str, Any]:
    row["suppressed"] = suppress(row, indicators, withheld)
    return row


def withhold(row: dict[str, Any], keys: dict[str, Any], withheld: set[Any]) -> dict[str, Any]:
    """Blank the row's counts (row key -> hierarchy column) that are withheld, and list them."""
    row["suppressed"] = [k for k, column in keys.items() if column in withheld]
    for key in row["suppressed"]:
        row[key] = None
    return row


async def region_name_of(session: AsyncSession, prefix: str) -> str | None:
    if not prefix:
        return "Indonesia"
    return (await repository.region_names(session=session, codes=[prefix])).get(prefix)


def _table(title: str, audience: Audience, period: Period, region_name: str | None, threshold: int,
           columns: list[Column], rows: list[dict[str, Any]]) -> ReportTable:
    field = audience.fields[0].value if len(audience.fields) == 1 else None
    return ReportTable(title=title, region=audience.prefix, region_name=region_name, period=period.as_dict(),
                       spm_field=field, suppression_threshold=threshold if audience.suppress else None,
                       columns=columns, rows=rows)


async def indicator_table(*, session: AsyncSession, audience: Audience, period: Period, by: Level | None,
                          lang: str, threshold: int) -> ReportTable:
    """Every indicator of the audience's fields for the region (one row) or its sub-regions (`by`)."""
    length = group_length(audience.prefix, by)
    fields = tuple(f.value for f in audience.fields)
    indicators = indicators_for(list(audience.fields))

    async def fetch(prefix: str, n: int) -> dict[str, Values]:
        return await reads.raw_values(session=session, scope=Scope(prefix, n, period, fields))

    hierarchy = Hierarchy(fetch, counts_of(indicators), threshold, PARTITIONS)
    raw = await hierarchy.rows(audience.prefix, length, suppressed=audience.suppress)
    names = await repository.region_names(session=session, codes=list(raw))
    rows = []
    for code in sorted(raw):
        values = with_rates(raw[code], indicators)
        row = {"region_code": code, "region_name": names.get(code) or ("Indonesia" if not code else None), **values}
        withheld = await hierarchy.withheld(code) if audience.suppress else set()
        rows.append(finish_row(row, indicators, withheld))
    columns = [text_column("region_code", lang), text_column("region_name", lang), *indicator_columns(indicators, lang)]
    name = await region_name_of(session, audience.prefix)
    return _table("Indicators", audience, period, name, threshold, columns, rows)


async def needs_table(*, session: AsyncSession, audience: Audience, period: Period, by: Level | None, lang: str,
                      threshold: int) -> ReportTable:
    """Needs detected, resolved and open, per region, field and category."""
    fields = tuple(f.value for f in audience.fields)
    counts = ["detected", "resolved", "open"]

    async def fetch(prefix: str, n: int) -> dict[str, dict[Any, Any]]:
        out: dict[str, dict[Any, Any]] = {}  # per region: (field, category, count) -> value
        for r in await reads.needs_by_category(session=session, scope=Scope(prefix, n, period, fields)):
            out.setdefault(r["region"], {}).update({(r["spm_field"], r["category"], k): r[k] for k in counts})
        return out

    hierarchy = Hierarchy(fetch, None, threshold)
    found = await hierarchy.rows(audience.prefix, group_length(audience.prefix, by), suppressed=audience.suppress)
    names = await repository.region_names(session=session, codes=sorted(found))
    rows = []
    for region in sorted(found):
        withheld = await hierarchy.withheld(region) if audience.suppress else set()
        for field, category in sorted({(field, category) for field, category, _ in found[region]}):
            cells = {k: (field, category, k) for k in counts}
            row = {"region_code": region, "region_name": names.get(region), "spm_field": field, "category": category,
                   **{k: found[region][column] for k, column in cells.items()}}
            rows.append(withhold(row, cells, withheld))
    columns = [*(text_column(k, lang) for k in ("region_code", "region_name", "spm_field", "category")),
               *(count_column(k, lang) for k in counts)]
    return _table("Needs by category", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)


async def referral_timeline(*, session: AsyncSession, audience: Audience, period: Period, months: int, lang: str,
                            threshold: int) -> ReportTable:
    """Referrals created per month (the `months` ending with the period), field and current status."""
    fields = tuple(f.value for f in audience.fields)
    shown = period.months_back(months)

    async def fetch(prefix: str, n: int) -> dict[str, dict[Any, Any]]:
        out: dict[str, dict[Any, Any]] = {}  # per region: (month, field, status) -> referrals
        for r in await reads.referral_timeline(session=session, scope=Scope(prefix, n, period, fields),
                                                    months=shown):
            out.setdefault(r["region"], {})[(r["month"], r["spm_field"], r["status"])] = r["referrals"]
        return out

    hierarchy = Hierarchy(fetch, None, threshold)
    found = (await hierarchy.rows(audience.prefix, len(audience.prefix), suppressed=audience.suppress))
    counts = found.get(audience.prefix, {})
    withheld = await hierarchy.withheld(audience.prefix) if audience.suppress else set()
    rows = []
    for column in sorted(counts):
        month, field, status = column
        row = {"month": month, "spm_field": field, "status": status, "referrals": counts[column]}
        rows.append(withhold(row, {"referrals": column}, withheld))
    columns = [*(text_column(k, lang) for k in ("month", "spm_field", "status")), count_column("referrals", lang)]
    return _table("Referrals over time", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)


async def village_ranking(*, session: AsyncSession, audience: Audience, period: Period, limit: int, lang: str,
                          threshold: int) -> ReportTable:
    """Villages ranked by needs open at the period's end; withheld ones after the shown, by code, so that their
    place does not tell their number."""
    fields = tuple(f.value for f in audience.fields)

    async def fetch(prefix: str, n: int) -> dict[str, Values]:
        return await reads.need_values(session=session, scope=Scope(prefix, n, period, fields))

    hierarchy = Hierarchy(fetch, ["needs.open"], threshold)
    found = await hierarchy.rows(audience.prefix, 10, suppressed=audience.suppress)
    villages = []
    for code, values in found.items():
        if values.get("needs.open"):
            withheld = await hierarchy.withheld(code) if audience.suppress else set()
            villages.append((code, int(values["needs.open"] or 0), "needs.open" in withheld))
    villages.sort(key=lambda v: (v[2], -v[1] if not v[2] else 0, v[0]))
    chosen = villages[:limit]
    names = await repository.region_names(session=session, codes=[code for code, _, _ in chosen])
    rows = [withhold({"rank": rank, "village_code": code, "village_name": names.get(code), "open_needs": count},
                     {"open_needs": "needs.open"}, {"needs.open"} if hidden else set())
            for rank, (code, count, hidden) in enumerate(chosen, start=1)]
    columns = [text_column("rank", lang), text_column("village_code", lang), text_column("village_name", lang),
               count_column("open_needs", lang)]
    return _table("Villages by open needs", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)
