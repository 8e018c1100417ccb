"""The SPM matrix (issue 15 item 5): per service type and column (a child region of the one asked for, or an
agency), the target (computed from the indicators, the agency's figure, the effective one), the residents in
need now, those served, the achievement, the programmes and their budget planned and realised by source.

Counts of residents (computed targets, in need, served) are suppressed as the indicators are: the small ones and,
across sibling regions, those that would follow from the rest (`indicators/complementary.py`), with what derives
from them (achievement, budget per resident served). Agencies' figures, programmes and budgets are public
figures of government and are never withheld.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.access import Audience
from services.reporting.indicators import repository as indicators
from services.reporting.indicators.complementary import CHILD_LENGTH, Hierarchy, protect
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope
from services.reporting.indicators.schemas import Column, ReportTable
from services.reporting.indicators.service import region_name_of
from services.reporting.spm import repository
from services.reporting.spm.targets import rule_of
from services.reporting.summaries import reads
from shared.events.programmes import BudgetSource
from shared.spm import SERVICE_TYPES, GovernmentLevel, ServiceType

ColumnsMode = Literal["regions", "agencies"]
Cell = tuple[str, str]  # (measure, service type code): a count the suppression decides on

SOURCES = [s.value for s in BudgetSource]

_LABELS: dict[str, tuple[str, str, str]] = {  # key -> (kind, English, Indonesian)
    "region_code": ("text", "Region code", "Kode wilayah"), "region_name": ("text", "Region", "Wilayah"),
    "agency_id": ("text", "Agency id", "Id OPD"), "agency_name": ("text", "Agency", "OPD/lembaga"),
    "spm_field": ("text", "SPM field", "Bidang SPM"), "level": ("text", "Government level", "Tingkat pemerintahan"),
    "service_type": ("text", "Service type code", "Kode jenis pelayanan"),
    "service_type_name": ("text", "Basic service type", "Jenis pelayanan dasar"),
    "target_unit": ("text", "Unit", "Satuan"),
    "target_computed": ("count", "Target from posyandu data", "Jumlah sasaran (data posyandu)"),
    "target_agency": ("count", "Target set by the agency", "Jumlah sasaran (penetapan OPD)"),
    "target_effective": ("count", "Target", "Jumlah sasaran"),
    "in_need": ("count", "Residents in need now", "Jumlah yang membutuhkan layanan"),
    "served": ("count", "Residents served", "Jumlah yang terlayani"),
    "achievement_percent": ("percent", "Achievement (%)", "Capaian (%)"),
    "programmes": ("count", "Programmes", "Jumlah program"),
    "budget_planned": ("rupiah", "Budget planned (Rp)", "Anggaran (Rp)"),
    "budget_realised": ("rupiah", "Budget realised (Rp)", "Realisasi anggaran (Rp)"),
    "budget_per_served": ("rupiah", "Budget realised per resident served (Rp)",
                          "Realisasi anggaran per penerima layanan (Rp)"),
}
SOURCE_NAMES = {"apbd-province": ("APBD province", "APBD provinsi"),
                "apbd-regency": ("APBD regency/city", "APBD kabupaten/kota"),
                "apbdes": ("APBDes/Dana Desa", "APBDes/Dana Desa"), "zakat": ("Zakat (Baznas)", "Zakat (Baznas)"),
                "csr": ("CSR", "CSR"), "other": ("Other", "Lainnya")}
for _source, (_en, _id) in SOURCE_NAMES.items():
    _slug = _source.replace("-", "_")
    _LABELS[f"planned_{_slug}"] = ("rupiah", f"Budget planned, {_en} (Rp)", f"Anggaran {_id} (Rp)")
    _LABELS[f"realised_{_slug}"] = ("rupiah", f"Budget realised, {_en} (Rp)", f"Realisasi {_id} (Rp)")

_CELL_KEYS = ["target_unit", "target_computed", "target_agency", "target_effective", "in_need", "served",
              "achievement_percent", "programmes", "budget_planned", "budget_realised", "budget_per_served",
              *(f"{kind}_{s.replace('-', '_')}" for kind in ("planned", "realised") for s in SOURCES)]


def column(key: str, lang: str) -> Column:
    kind, en, id_ = _LABELS[key]
    return Column(key=key, label=id_ if lang == "id" else en, kind=kind)


def spm_period(year: int, month: int | None, today: date) -> Period:
    """The year, or the year to date through `month` (served and spent counted from January)."""
    if month is None:
        return Period(str(year), date(year, 1, 1), date(year + 1, 1, 1), today)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(f"{year}-01..{year}-{month:02d}", date(year, 1, 1), end, today)


@dataclass(frozen=True)
class MatrixQuery:
    year: int
    month: int | None
    columns: ColumnsMode
    #: The service types' level; None: by the columns (see `_levels`).
    level: GovernmentLevel | None
    lang: str
    threshold: int
    #: Today by the reporting clock (a running year's stocks are taken on it).
    today: date


def _levels(query: MatrixQuery, prefix: str) -> tuple[GovernmentLevel, ...]:
    """Province service types for province columns (the nation's breakdown), regency/city ones below; for agency
    columns, each agency's own level."""
    if query.level is not None:
        return (query.level,)
    if query.columns == "agencies":
        return tuple(GovernmentLevel)
    return (GovernmentLevel.PROVINCE,) if not prefix else (GovernmentLevel.REGENCY,)


def _service_types(audience: Audience, levels: Iterable[GovernmentLevel]) -> list[ServiceType]:
    levels = set(levels)
    return [st for st in SERVICE_TYPES.values() if st.spm_field in audience.fields and st.level in levels]


@dataclass
class _Inputs:
    """What one column holds besides the suppressed counts: programmes and budgets by source."""

    programmes: int = 0
    planned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    realised: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))

    def add(self, programme: dict[str, Any]) -> None:
        self.programmes += 1
        for totals, lines in ((self.planned, programme["budget"]), (self.realised, programme["spent"])):
            for line in lines:
                totals[line["source"]] = totals.get(line["source"], 0) + int(line["amount"])


def _inputs(programmes: list[dict[str, Any]], code: str, *, containing: bool,
            agency_id: uuid.UUID | None = None) -> dict[str, _Inputs]:
    """Per service type, the programmes serving a region within `code` (or, `containing`, also one that contains
    it: the total of the region asked for), of one agency if given."""
    out: dict[str, _Inputs] = {}
    for p in programmes:
        if agency_id is not None and p["agency_id"] != agency_id:
            continue
        if any(c.startswith(code) or (containing and code.startswith(c)) for c in p["region_codes"]):
            out.setdefault(p["service_type"], _Inputs()).add(p)
    return out


def _cells(st: ServiceType, counts: dict[Any, Any], withheld: set[Any], figure: int | None,
           inputs: _Inputs | None) -> tuple[dict[str, Any], list[str]]:
    """One cell of the matrix as flat values, and the keys withheld."""
    rule = rule_of(st.target)
    hidden: list[str] = []

    def count(measure: str) -> int | None:
        if (measure, st.code) in withheld:
            hidden.append(measure)
            return None
        return int(counts.get((measure, st.code)) or 0)

    computed = count("target_computed") if rule and rule.computable else None
    in_need, served = count("in_need"), count("served")
    effective = figure if figure is not None else computed
    if figure is None and "target_computed" in hidden:
        hidden.append("target_effective")
    inputs = inputs or _Inputs()
    planned, realised = inputs.planned, inputs.realised
    spent = sum(realised.values())
    values: dict[str, Any] = {
        "target_unit": rule.unit if rule else None, "target_computed": computed, "target_agency": figure,
        "target_effective": effective, "in_need": in_need, "served": served,
        "achievement_percent": round(100 * served / effective, 2) if served is not None and effective else None,
        "programmes": inputs.programmes, "budget_planned": sum(planned.values()), "budget_realised": spent,
        "budget_per_served": round(spent / served) if served else None,
        **{f"planned_{s.replace('-', '_')}": planned.get(s, 0) for s in SOURCES},
        **{f"realised_{s.replace('-', '_')}": realised.get(s, 0) for s in SOURCES}}
    if "served" in hidden or "target_effective" in hidden:
        hidden.append("achievement_percent")
    if "served" in hidden:
        hidden.append("budget_per_served")
    for key in hidden:
        values[key] = None
    return values, sorted(set(hidden))


class _Counts:
    """The suppressed counts by region: computed targets from the indicator values, open needs and referrals
    completed in the service types' categories."""

    def __init__(self, session: AsyncSession, audience: Audience, period: Period, types: list[ServiceType],
                 threshold: int) -> None:
        self.session, self.audience, self.period, self.types = session, audience, period, types
        self.categories = sorted({c for st in types for c in st.referral_categories})
        columns: list[Cell] = []
        for st in types:
            rule = rule_of(st.target)
            columns += [*([("target_computed", st.code)] if rule and rule.computable else []),
                        ("in_need", st.code), ("served", st.code)]
        self.hierarchy = Hierarchy(self._fetch, list(columns), threshold)

    async def _fetch(self, prefix: str, n: int) -> dict[str, dict[Any, Any]]:
        scope = Scope(prefix, n, self.period, tuple(f.value for f in self.audience.fields))
        stocks = await reads.stock_values(session=self.session, scope=scope)
        open_needs: dict[str, dict[str, int]] = {}
        for row in await reads.needs_by_category(session=self.session, scope=scope):
            open_needs.setdefault(row["region"], {})[row["category"]] = int(row["open"] or 0)
        done = await repository.served(session=self.session, prefix=prefix, length=n, period=self.period,
                                       categories=self.categories)
        out: dict[str, dict[Any, Any]] = {}
        for region in {*stocks, *open_needs, *done}:
            cells: dict[Any, Any] = {}
            for st in self.types:
                rule = rule_of(st.target)
                if rule and rule.computable:
                    cells[("target_computed", st.code)] = rule.compute(stocks.get(region, {}))
                cells[("in_need", st.code)] = sum(open_needs.get(region, {}).get(c, 0) for c in st.referral_categories)
                cells[("served", st.code)] = sum(done.get(region, {}).get(c, 0) for c in st.referral_categories)
            out[region] = cells
        return out

    async def of(self, code: str) -> tuple[dict[Any, Any], set[Any]]:
        withheld = await self.hierarchy.withheld(code) if self.audience.suppress else set()
        return await self.hierarchy.values(code), withheld


def _row(head: dict[str, Any], st: ServiceType, cells: tuple[dict[str, Any], list[str]]) -> dict[str, Any]:
    values, hidden = cells
    return {**head, "spm_field": st.spm_field.value, "level": st.level.value, "service_type": st.code,
            "service_type_name": st.name, **values, "suppressed": hidden}


async def matrix_table(*, session: AsyncSession, audience: Audience, query: MatrixQuery) -> ReportTable:
    prefix = audience.prefix
    period = spm_period(query.year, query.month, query.today)
    types = _service_types(audience, _levels(query, prefix))
    codes = [st.code for st in types]
    counts = _Counts(session, audience, period, types, query.threshold)
    programmes = await repository.programmes(session=session, prefix=prefix, period=period, service_types=codes)
    figures = await repository.target_figures(session=session, prefix=prefix, year=query.year, service_types=codes)
    name = await region_name_of(session, prefix)

    async def region_rows(code: str, region_name: str | None, *, total: bool) -> list[dict[str, Any]]:
        values, withheld = await counts.of(code)
        inputs = _inputs(programmes, code, containing=total)
        head = {"region_code": code, "region_name": region_name}
        return [_row(head, st, _cells(st, values, withheld, (figures.get((code, st.code)) or {}).get("target"),
                                      inputs.get(st.code))) for st in types]

    rows: list[dict[str, Any]] = []
    if query.columns == "regions":
        length = CHILD_LENGTH.get(len(prefix))
        if length is not None:
            if audience.suppress:
                await counts.hierarchy.within(prefix, length)
            found = set(await counts.hierarchy.group(prefix, length))
            named = await repository.child_regions(session=session, prefix=prefix, length=length)
            in_programmes = {c[:length] for p in programmes for c in p["region_codes"]
                             if len(c) >= length and c.startswith(prefix)}
            for code in sorted(found | set(named) | in_programmes):
                rows += await region_rows(code, named.get(code), total=False)
        heads = ["region_code", "region_name"]
    else:
        rows += await _agency_rows(session, audience, query, period, types, counts, programmes)
        heads = ["agency_id", "agency_name", "region_code", "region_name"]
    rows += await region_rows(prefix, name, total=True)  # the region itself: its total column
    columns = [column(k, query.lang) for k in (*heads, "spm_field", "level", "service_type", "service_type_name",
                                               *_CELL_KEYS)]
    return ReportTable(title="SPM matrix", region=prefix, region_name=name, period=period.as_dict(),
                       spm_field=audience.fields[0].value if len(audience.fields) == 1 else None,
                       suppression_threshold=query.threshold if audience.suppress else None, columns=columns,
                       rows=rows)


async def _agency_rows(session: AsyncSession, audience: Audience, query: MatrixQuery, period: Period,
                       types: list[ServiceType], counts: _Counts,
                       programmes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A column per agency of the region's fields: the targets and needs of the part of the region it serves
    (the region, or its jurisdiction inside it), the referrals completed by it, its own figure and programmes."""
    prefix = audience.prefix
    agencies = await indicators.agencies_in(session=session, prefix=prefix,
                                            fields=[f.value for f in audience.fields])
    served = await repository.served_by_agency(session=session, prefix=prefix, period=period,
                                               categories=counts.categories)
    figures = await repository.agency_figures(session=session, year=query.year, service_types=[t.code for t in types])
    areas = {a["id"]: max(prefix, a["jurisdiction_code"], key=len) for a in agencies}
    names = await indicators.region_names(session=session, codes=sorted(set(areas.values())))
    own = {a["id"]: [st for st in types if st.level.value == a["level"] and st.spm_field.value in a["spm_fields"]]
           for a in agencies}
    served_cells = {a["id"]: {("served", st.code): sum(served.get(a["id"], {}).get(c, 0)
                                                       for c in st.referral_categories) for st in own[a["id"]]}
                    for a in agencies}
    withheld_served: dict[uuid.UUID, set[Any]] = {a["id"]: set() for a in agencies}
    if audience.suppress:
        _, region_withheld = await counts.of(prefix)
        for st in types:
            cell = ("served", st.code)
            column_ = {str(a): c[cell] for a, c in served_cells.items() if cell in c}
            small = {a for a, v in column_.items() if v < query.threshold}
            for a in small | protect(column_, small, parent_withheld=cell in region_withheld,
                                     threshold=query.threshold):
                withheld_served[uuid.UUID(a)].add(cell)
    rows: list[dict[str, Any]] = []
    for agency in agencies:
        area = areas[agency["id"]]
        values, withheld = await counts.of(area)
        values = {**values, **served_cells[agency["id"]]}
        withheld = {c for c in withheld if c[0] != "served"} | withheld_served[agency["id"]]
        inputs = _inputs(programmes, area, containing=True, agency_id=agency["id"])
        head = {"agency_id": str(agency["id"]), "agency_name": agency["name"], "region_code": area,
                "region_name": names.get(area) or ("Indonesia" if not area else None)}
        for st in own[agency["id"]]:
            figure = figures.get((agency["id"], area, st.code))
            rows.append(_row(head, st, _cells(st, values, withheld, figure, inputs.get(st.code))))
    return rows

