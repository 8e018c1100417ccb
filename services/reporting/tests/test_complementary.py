"""Complementary suppression: no withheld cell can be worked out from the shown ones.

First the rule itself on generated region trees: with every "region = sum of its children" as an equation over
the withheld cells, linear algebra determines none of them. Then the attack through the real service: a district
whose one small village would be its total minus the others, in Papua Barat (92), published through the broker;
at every level that has a total, in JSON and in CSV, and in the matrix and the ranking.
"""

from __future__ import annotations

import asyncio
import csv
import io
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.indicators.catalogue import ALL, PARTITIONS
from services.reporting.indicators.complementary import CHILD_LENGTH, Hierarchy
from services.reporting.settings import ReportingSettings
from services.reporting.tests.conftest import Published
from services.reporting.tests.factories import Stream, at, previous_month, publish, until_consumed, years_before
from services.reporting.tests.scenario import TAMILOUW
from tests.support import tokens

THRESHOLD = 5

# --- The rule on generated trees --------------------------------------------------------------------------------

#: Village counts of a tree: province -> regency -> district -> village codes, built from nested list sizes.
trees = st.lists(st.lists(st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=4), min_size=1, max_size=3),
                          min_size=1, max_size=3), min_size=1, max_size=3)


def _villages(tree: list[Any]) -> dict[str, Any]:
    return {f"{p + 11:02d}{r + 1:02d}{d + 1:02d}{v + 1001:04d}": value
            for p, regencies in enumerate(tree) for r, districts in enumerate(regencies)
            for d, villages in enumerate(districts) for v, value in enumerate(villages)}


def _determined(unknowns: list[Any], equations: list[dict[Any, Fraction]]) -> set[Any]:
    """The unknowns the equations (coefficients by unknown; constants dropped) fix to one value: those whose unit
    vector lies in the equations' row space, read off the reduced row echelon form."""
    rows = [[eq.get(u, Fraction(0)) for u in unknowns] for eq in equations]
    pivot_row = 0
    pivots = []
    for col in range(len(unknowns)):
        found = next((r for r in range(pivot_row, len(rows)) if rows[r][col] != 0), None)
        if found is None:
            continue
        rows[pivot_row], rows[found] = rows[found], rows[pivot_row]
        lead = rows[pivot_row][col]
        rows[pivot_row] = [x / lead for x in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivots.append((pivot_row, col))
        pivot_row += 1
    return {unknowns[col] for r, col in pivots if sum(1 for x in rows[r] if x != 0) == 1}


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(tree=trees)
def test_no_withheld_cell_follows_from_the_shown_ones(tree: list[list[list[list[int]]]]) -> None:
    villages = _villages(tree)
    codes = {v[:n] for v in villages for n in (0, 2, 4, 6, 10)}
    value = {c: sum(x for v, x in villages.items() if v.startswith(c)) for c in codes}

    async def fetch(prefix: str, length: int) -> dict[str, dict[str, Any]]:
        return {c: {"k": value[c]} for c in codes if len(c) == length and c.startswith(prefix)}

    async def withheld_cells() -> set[str]:
        hierarchy = Hierarchy(fetch, ["k"], THRESHOLD)
        return {c for c in codes if "k" in await hierarchy.withheld(c)}

    withheld = asyncio.run(withheld_cells())
    assert {c for c in codes if value[c] < THRESHOLD} <= withheld
    # The same cells, whichever region a fresh request starts from.
    for code in sorted(codes)[:5]:
        assert ("k" in asyncio.run(Hierarchy(fetch, ["k"], THRESHOLD).withheld(code))) == (code in withheld)
    equations = []
    for parent in codes - set(villages):
        children = [c for c in codes if len(c) == CHILD_LENGTH[len(parent)] and c.startswith(parent)]
        equation = {c: Fraction(1) for c in children if c in withheld}
        if parent in withheld:
            equation[parent] = Fraction(-1)
        equations.append(equation)
        hidden = [c for c in children if c in withheld]
        if parent not in withheld and hidden:  # nor can their sum give a cell away (all zero, say)
            assert len(hidden) >= 2 and sum(value[c] for c in hidden) >= THRESHOLD, parent
    assert _determined(sorted(withheld), equations) == set()


#: Villages with three parts (a, b, c) of a row total t, like the age groups of the members.
part_trees = st.lists(st.lists(st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 9)),
                                                 min_size=1, max_size=3), min_size=1, max_size=2),
                               min_size=1, max_size=2), min_size=1, max_size=2)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(tree=part_trees)
def test_no_withheld_cell_follows_from_rows_and_columns(tree: list[list[list[list[tuple[int, int, int]]]]]) -> None:
    villages = _villages(tree)
    codes = {v[:n] for v in villages for n in (0, 2, 4, 6, 10)}
    parts = ["a", "b", "c"]
    value = {(c, k): sum(x[i] for v, x in villages.items() if v.startswith(c)) for c in codes
             for i, k in enumerate(parts)}
    value.update({(c, "t"): sum(value[(c, k)] for k in parts) for c in codes})

    async def fetch(prefix: str, length: int) -> dict[str, dict[str, Any]]:
        return {c: {k: value[(c, k)] for k in ["t", *parts]} for c in codes
                if len(c) == length and c.startswith(prefix)}

    async def withheld_cells() -> set[tuple[str, str]]:
        hierarchy = Hierarchy(fetch, ["t", *parts], THRESHOLD, [("t", parts)])
        return {(c, k) for c in codes for k in await hierarchy.withheld(c)}

    withheld = asyncio.run(withheld_cells())
    equations = []
    for k in ["t", *parts]:  # every region is the sum of its children, in every column
        for parent in codes - set(villages):
            children = [c for c in codes if len(c) == CHILD_LENGTH[len(parent)] and c.startswith(parent)]
            equation = {(c, k): Fraction(1) for c in children if (c, k) in withheld}
            if (parent, k) in withheld:
                equation[(parent, k)] = Fraction(-1)
            equations.append(equation)
    for code in codes:  # and every row's t the sum of its parts
        equation = {(code, k): Fraction(-1) for k in parts if (code, k) in withheld}
        if (code, "t") in withheld:
            equation[(code, "t")] = Fraction(1)
        equations.append(equation)
    # Only the nation's row may give a part away, where no province withholds one to hide it with (complementary.py).
    assert {code for code, _ in _determined(sorted(withheld), equations)} <= {""}


# --- The attack on the service -----------------------------------------------------------------------------------

PROVINCE, REGENCY, OTHER_REGENCY = "92", "9201", "9202"
DISTRICT, OTHER_DISTRICT = "920101", "920102"
#: Households per village: the one in SMALL is withheld and would be its district's total minus the others.
HOUSEHOLDS = {"9201011001": 1, "9201011002": 6, "9201011003": 7, "9201011004": 9,
              "9201021001": 6, "9201021002": 8, "9202011001": 2}
SMALL = "9201011001"


def history() -> tuple[Stream, str]:
    period, first, last = previous_month()
    s = Stream(default_time=at(first, 8))
    s.region(PROVINCE, "Papua Barat", "province", None)
    for code, parent in ((REGENCY, PROVINCE), (OTHER_REGENCY, PROVINCE)):
        s.region(code, f"Kabupaten {code}", "regency", parent)
    for code in (DISTRICT, OTHER_DISTRICT, "920201"):
        s.region(code, f"Distrik {code}", "district", code[:4])
    for village, count in HOUSEHOLDS.items():
        s.region(village, f"Kampung {village}", "village", village[:6])
        for _ in range(count):
            home = s.household(village)
            s.member(home, years_before(last, 2))  # a child under five: the matrix's kesehatan counts
            s.need(home, village, "kesehatan.stunting", detected=at(first, 9))
    s.agency(REGENCY, ["kesehatan"])
    s.agency(OTHER_REGENCY, ["kesehatan"])
    return s, period


@pytest.fixture(scope="module")
async def papua_barat(reporting: httpx.AsyncClient, reporting_settings: ReportingSettings) -> str:
    stream, period = history()
    await publish(reporting_settings.kafka_bootstrap_servers, stream.events)
    await until_consumed(reporting_settings.database_url, stream.events)
    return period


async def _table(client: httpx.AsyncClient, headers: dict[str, str], path: str = "/api/v1/indicators",
                 **params: str) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


COUNTS = [key for key, indicator in ALL.items() if indicator.kind == "count"]


def assert_nothing_follows(parent: dict[str, Any], children: list[dict[str, Any]]) -> None:
    """For every count: under a shown parent the withheld children are none or several (and their sum, which the
    parent minus the shown ones gives, is no small number); under a withheld parent at least one is withheld."""
    for key in (k for k in COUNTS if k in parent):
        hidden = [c for c in children if key in c["suppressed"]]
        if key in parent["suppressed"]:
            assert hidden or not children, (parent["region_code"], key)
        else:
            assert len(hidden) != 1, (parent["region_code"], key, hidden[0]["region_code"] if hidden else None)
            if hidden:
                assert parent[key] - sum(c[key] for c in children if key not in c["suppressed"]) >= THRESHOLD
    for row in (parent, *children):  # nor a row's total minus its shown parts
        for total, parts in PARTITIONS:
            if total in row and total not in row["suppressed"]:
                hidden_parts = [p for p in parts if p in row["suppressed"]]
                assert len(hidden_parts) != 1, (row["region_code"], total, hidden_parts)
                if hidden_parts:
                    assert row[total] - sum(row[p] for p in parts if p not in hidden_parts) >= THRESHOLD
    for row in (parent, *children):  # and no shown rate gives a withheld count back
        for key, indicator in ALL.items():
            if indicator.kind == "rate" and key in row and key not in row["suppressed"]:
                assert not {indicator.numerator, indicator.denominator} & set(row["suppressed"]), (key, row)


async def test_the_small_village_is_not_its_district_minus_the_others(reporting: httpx.AsyncClient,
                                                                      papua_barat: str) -> None:
    pembina = tokens.pembina(PROVINCE)
    admin = await _table(reporting, tokens.admin(), region=SMALL, period=papua_barat)
    assert admin["rows"][0]["coverage.households"] == 1
    district = (await _table(reporting, pembina, region=DISTRICT, period=papua_barat))["rows"][0]
    villages = (await _table(reporting, pembina, region=DISTRICT, period=papua_barat, by="village"))["rows"]
    assert district["coverage.households"] == 23  # shown
    shown = sum(v["coverage.households"] for v in villages if "coverage.households" not in v["suppressed"])
    assert district["coverage.households"] - shown != 1  # the attack gives no village's number
    withheld = [v["region_code"] for v in villages if "coverage.households" in v["suppressed"]]
    assert withheld == [SMALL, "9201011002"]  # the small one, and the next-smallest with it
    # The same in the CSV export.
    response = await reporting.get("/api/v1/indicators", params={"region": DISTRICT, "period": papua_barat,
                                                                 "by": "village", "format": "csv"}, headers=pembina)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["Households registered"] for r in rows] == ["x", "x", "7", "9"]
    assert 23 - sum(int(r["Households registered"]) for r in rows if r["Households registered"] != "x") != 1


@pytest.mark.parametrize("parent", [PROVINCE, REGENCY, OTHER_REGENCY, DISTRICT, OTHER_DISTRICT, "920201"])
async def test_no_level_gives_a_withheld_cell_away(reporting: httpx.AsyncClient, papua_barat: str,
                                                   parent: str) -> None:
    pembina = tokens.pembina(PROVINCE)
    level = {2: "regency", 4: "district", 6: "village"}[len(parent)]
    [total] = (await _table(reporting, pembina, region=parent, period=papua_barat))["rows"]
    children = (await _table(reporting, pembina, region=parent, period=papua_barat, by=level))["rows"]
    assert_nothing_follows(total, children)
    # Each child alone withholds exactly what the breakdown does (else asking for it alone would undo it).
    for child in children:
        [alone] = (await _table(reporting, pembina, region=child["region_code"], period=papua_barat))["rows"]
        assert alone == child, child["region_code"]
    # And a deeper breakdown of the same region too.
    if len(parent) < 6:
        deeper = (await _table(reporting, pembina, region=PROVINCE, period=papua_barat, by=level))["rows"]
        assert [r for r in deeper if r["region_code"].startswith(parent)] == children


async def test_the_regencies_protect_each_other_up_to_the_province(reporting: httpx.AsyncClient,
                                                                   papua_barat: str) -> None:
    pembina = tokens.pembina(PROVINCE)
    regencies = {r["region_code"]: r for r in (await _table(reporting, pembina, region=PROVINCE, period=papua_barat,
                                                           by="regency"))["rows"]}
    # 9202's 2 households would be the province's 39 minus 9201's 37: 9201 is withheld, and below it the smaller
    # district (14 = 6 + 8) and there the smaller village, so no total is the sum of shown parts.
    assert regencies[REGENCY]["coverage.households"] is None and regencies[OTHER_REGENCY]["coverage.households"] is None
    districts = (await _table(reporting, pembina, region=REGENCY, period=papua_barat, by="district"))["rows"]
    assert [(d["region_code"], d["coverage.households"]) for d in districts] == [(DISTRICT, 23), (OTHER_DISTRICT, None)]
    villages = (await _table(reporting, pembina, region=OTHER_DISTRICT, period=papua_barat, by="village"))["rows"]
    assert [(v["region_code"], v["coverage.households"]) for v in villages] == [("9201021001", None),
                                                                                ("9201021002", 8)]


async def test_the_nation_protects_its_provinces(reporting: httpx.AsyncClient, papua_barat: str) -> None:
    service = tokens.service()
    [nation] = (await _table(reporting, service, period=papua_barat))["rows"]
    provinces = (await _table(reporting, service, period=papua_barat, by="province"))["rows"]
    assert_nothing_follows(nation, provinces)


async def test_the_matrix_and_the_ranking_withhold_the_same_cells(reporting: httpx.AsyncClient,
                                                                  papua_barat: str) -> None:
    pembina = tokens.pembina(PROVINCE)
    matrix = (await _table(reporting, pembina, "/api/v1/matrix", region=PROVINCE, period=papua_barat))["rows"]
    assert {r["region_code"]: r["kesehatan.children_under_five"] for r in matrix} == {REGENCY: None,
                                                                                      OTHER_REGENCY: None}
    for row in matrix:
        [area] = (await _table(reporting, pembina, region=row["region_code"], period=papua_barat,
                               field=row["spm_field"]))["rows"]
        stock = [k for k in COUNTS if k.startswith(row["spm_field"] + ".") and k in row]
        assert stock and {k: row[k] for k in stock} == {k: area[k] for k in stock}, row["region_code"]
    # The ranking: the village with 1 open need and the next-smallest (6) withheld, and placed after the shown
    # ones by code, so that their rank tells nothing.
    ranking = (await _table(reporting, pembina, "/api/v1/rankings/villages", region=DISTRICT,
                            period=papua_barat))["rows"]
    assert [(r["village_code"], r["open_needs"]) for r in ranking] == [
        ("9201011004", 9), ("9201011003", 7), (SMALL, None), ("9201011002", None)]
    [district] = (await _table(reporting, pembina, region=DISTRICT, period=papua_barat))["rows"]
    assert district["needs.open"] == 23 and 23 - 16 != 1


async def test_needs_by_category_withhold_alike(reporting: httpx.AsyncClient, papua_barat: str) -> None:
    pembina = tokens.pembina(PROVINCE)
    [total] = (await _table(reporting, pembina, "/api/v1/indicators/needs", region=DISTRICT,
                            period=papua_barat))["rows"]
    villages = (await _table(reporting, pembina, "/api/v1/indicators/needs", region=DISTRICT, period=papua_barat,
                             by="village"))["rows"]
    assert (total["category"], total["open"]) == ("kesehatan.stunting", 23)
    assert [(v["region_code"], v["open"]) for v in villages] == [
        (SMALL, None), ("9201011002", None), ("9201011003", 7), ("9201011004", 9)]


async def test_a_rows_total_minus_its_shown_parts_gives_nothing(reporting: httpx.AsyncClient,
                                                                maluku: Published) -> None:
    bands = dict(PARTITIONS)["coverage.members"]
    params = {"region": TAMILOUW, "period": maluku.period}
    [exact] = (await _table(reporting, tokens.admin(), **params))["rows"]
    [row] = (await _table(reporting, tokens.pembina("81"), **params))["rows"]
    assert (exact["coverage.members"], exact["coverage.infant"], exact["coverage.toddler"]) == (12, 1, 5)
    # 12 members, 6 adults and 5 toddlers shown would leave the 1 infant (with two zeros): the toddlers go too.
    assert row["coverage.members"] == 12 and row["coverage.adult"] == 6 and row["coverage.toddler"] is None
    assert 12 - sum(row[b] for b in bands if b not in row["suppressed"]) >= THRESHOLD
