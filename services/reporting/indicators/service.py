"""Report tables over the projections: indicators by region, needs by category, the referral timeline, rankings."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.access import Audience
from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import Indicator, indicators_for
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope
from services.reporting.indicators.schemas import Column, ReportTable
from services.reporting.indicators.suppression import suppress, with_rates
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


def finish_row(row: dict[str, Any], indicators: list[Indicator], audience: Audience, threshold: int) -> dict[str, Any]:
    row["suppressed"] = suppress(row, indicators, threshold) if audience.suppress else []
    return row


def suppress_counts(row: dict[str, Any], keys: list[str], audience: Audience, threshold: int) -> dict[str, Any]:
    hidden = [k for k in keys if audience.suppress and (row.get(k) or 0) < threshold]
    for key in hidden:
        row[key] = None
    row["suppressed"] = hidden
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
    scope = Scope(audience.prefix, length, period, tuple(f.value for f in audience.fields))
    indicators = indicators_for(list(audience.fields))
    raw = await repository.raw_values(session=session, scope=scope)
    if by is None:
        raw.setdefault(audience.prefix, {})
    names = await repository.region_names(session=session, codes=list(raw))
    rows = []
    for code in sorted(raw):
        values = with_rates(raw[code], indicators)
        row = {"region_code": code, "region_name": names.get(code) or ("Indonesia" if not code else None), **values}
        rows.append(finish_row(row, indicators, audience, threshold))
    columns = [text_column("region_code", lang), text_column("region_name", lang), *indicator_columns(indicators, lang)]
    name = await region_name_of(session, audience.prefix)
    return _table("Indicators", audience, period, name, threshold, columns, rows)


async def needs_table(*, session: AsyncSession, audience: Audience, period: Period, by: Level | None, lang: str,
                      threshold: int) -> ReportTable:
    """Needs detected, resolved and open, per region, field and category."""
    scope = Scope(audience.prefix, group_length(audience.prefix, by), period,
                  tuple(f.value for f in audience.fields))
    found = await repository.needs_by_category(session=session, scope=scope)
    names = await repository.region_names(session=session, codes=sorted({r["region"] for r in found}))
    counts = ["detected", "resolved", "open"]
    rows = [suppress_counts({"region_code": r["region"], "region_name": names.get(r["region"]),
                             "spm_field": r["spm_field"], "category": r["category"],
                             **{k: r[k] for k in counts}}, counts, audience, threshold) for r in found]
    columns = [*(text_column(k, lang) for k in ("region_code", "region_name", "spm_field", "category")),
               *(count_column(k, lang) for k in counts)]
    return _table("Needs by category", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)


async def referral_timeline(*, session: AsyncSession, audience: Audience, period: Period, months: int, lang: str,
                            threshold: int) -> ReportTable:
    """Referrals created per month (the `months` ending with the period), field and current status."""
    scope = Scope(audience.prefix, len(audience.prefix), period, tuple(f.value for f in audience.fields))
    found = await repository.referral_timeline(session=session, scope=scope, months=period.months_back(months))
    rows = [suppress_counts(dict(r), ["referrals"], audience, threshold) for r in found]
    columns = [*(text_column(k, lang) for k in ("month", "spm_field", "status")), count_column("referrals", lang)]
    return _table("Referrals over time", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)


async def village_ranking(*, session: AsyncSession, audience: Audience, period: Period, limit: int, lang: str,
                          threshold: int) -> ReportTable:
    """Villages ranked by needs open at the period's end."""
    scope = Scope(audience.prefix, 10, period, tuple(f.value for f in audience.fields))
    found = await repository.villages_by_open_needs(session=session, scope=scope, limit=limit)
    rows = [suppress_counts({"rank": rank, **r}, ["open_needs"], audience, threshold)
            for rank, r in enumerate(found, start=1)]
    columns = [text_column("rank", lang), text_column("village_code", lang), text_column("village_name", lang),
               count_column("open_needs", lang)]
    return _table("Villages by open needs", audience, period, await region_name_of(session, audience.prefix), threshold,
                  columns, rows)
