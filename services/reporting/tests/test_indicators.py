"""Indicators from a known event stream (shuffled, partly repeated, through the real broker) equal hand counts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.reporting.summaries.contributions import within_stated_error
from services.reporting.tests.conftest import Published
from services.reporting.tests.reference import PERCENTILES
from services.reporting.tests.scenario import SEPA, TAMILOUW
from tests.support import tokens

TAMILOUW_VALUES = {
    "coverage.households": 6, "coverage.members": 12, "coverage.infant": 1, "coverage.toddler": 5,
    "coverage.school_age": 0, "coverage.adult": 6, "coverage.elderly": 0, "coverage.pregnant": 1,
    "kesehatan.children_under_five": 6, "kesehatan.children_measured": 5, "kesehatan.measured_rate": 0.8333,
    "kesehatan.measured_height": 5, "kesehatan.stunted": 2, "kesehatan.stunting_rate": 0.4,
    "kesehatan.measured_weight_height": 5, "kesehatan.wasted": 1, "kesehatan.wasting_rate": 0.2,
    "kesehatan.measured_weight": 5, "kesehatan.underweight": 2, "kesehatan.underweight_rate": 0.4,
    "kesehatan.children_under_two": 1, "kesehatan.immunization_complete": 1, "kesehatan.immunization_rate": 1.0,
    "pekerjaan-umum.households_profiled": 5, "pekerjaan-umum.safe_water": 4, "pekerjaan-umum.safe_water_rate": 0.8,
    "pekerjaan-umum.safe_sanitation": 4, "pekerjaan-umum.safe_sanitation_rate": 0.8,
    "pekerjaan-umum.open_defecation": 1,
    "sosial.decile_1_4": 4, "sosial.decile_1_4_with_aid": 2, "sosial.aid_coverage_rate": 0.5,
    "needs.detected": 4, "needs.resolved": 1, "needs.open": 4,
    "referrals.created": 6, "referrals.accepted": 3, "referrals.rejected": 1, "referrals.completed": 2,
    "referrals.failed": 0, "referrals.cancelled": 0, "referrals.open": 3, "referrals.overdue": 1,
    "referrals.unrouted": 1, "referrals.responded": 4, "referrals.response_hours_median": 25.0,
    "referrals.response_hours_p90": 37.0, "referrals.completion_hours_median": 75.0,
    "referrals.completion_hours_p90": 95.0, "referrals.completed_within_sla": 1, "referrals.sla_compliance_rate": 0.5,
}
SEPA_VALUES = {
    "coverage.households": 3, "coverage.members": 6, "coverage.school_age": 2, "coverage.adult": 3,
    "coverage.elderly": 1, "pendidikan.aged_7_18": 2, "pendidikan.out_of_school": 1,
    "pendidikan.out_of_school_rate": 0.5, "perumahan-rakyat.households_profiled": 3, "perumahan-rakyat.rtlh": 2,
    "perumahan-rakyat.rtlh_rate": 0.6667, "perumahan-rakyat.disaster_damaged": 1, "sosial.neglected_elderly": 1,
    "sosial.decile_1_4": 0, "needs.detected": 1, "needs.open": 1, "referrals.created": 1,
}
AMAHAI_VALUES = {  # district 810101 and regency 8101 alike: Tamilouw and Sepa
    "coverage.households": 9, "coverage.members": 18, "coverage.infant": 1, "coverage.toddler": 5,
    "coverage.school_age": 2, "coverage.adult": 9, "coverage.elderly": 1, "coverage.pregnant": 1,
    "kesehatan.stunting_rate": 0.4, "pendidikan.out_of_school": 1, "perumahan-rakyat.rtlh": 2,
    "needs.detected": 5, "needs.resolved": 1, "needs.open": 5, "referrals.created": 7, "referrals.open": 4,
    "referrals.responded": 4, "referrals.response_hours_median": 25.0,
}
MALUKU_VALUES = {
    "coverage.households": 11, "coverage.members": 20, "coverage.adult": 11, "coverage.pregnant": 2,
    "trantibumlinmas.households_profiled": 2, "trantibumlinmas.at_risk": 2, "trantibumlinmas.informed": 1,
    "trantibumlinmas.informed_rate": 0.5, "trantibumlinmas.displaced": 1, "referrals.created": 7,
}


async def indicators(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await client.get("/api/v1/indicators", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def subset(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The row's values of the expected keys; a percentile as the expected one when within the duration buckets'
    stated error."""
    return {k: expected[k] if k in PERCENTILES and row[k] is not None and within_stated_error(row[k], expected[k])
            else row[k] for k in expected}


@pytest.mark.parametrize(("region", "expected"), [(TAMILOUW, TAMILOUW_VALUES), (SEPA, SEPA_VALUES),
                                                  ("810101", AMAHAI_VALUES), ("8101", AMAHAI_VALUES),
                                                  ("81", MALUKU_VALUES)])
async def test_indicators_equal_the_hand_counts_at_every_level(reporting: httpx.AsyncClient, maluku: Published,
                                                                region: str, expected: dict[str, Any]) -> None:
    table = await indicators(reporting, tokens.admin(), region=region, period=maluku.period)
    assert table["region"] == region and table["suppression_threshold"] is None
    [row] = table["rows"]
    assert row["region_code"] == region and row["suppressed"] == []
    assert subset(row, expected) == expected


async def test_a_breakdown_groups_by_the_level_below(reporting: httpx.AsyncClient, maluku: Published) -> None:
    villages = await indicators(reporting, tokens.admin(), region="81", period=maluku.period, by="village")
    by_code = {row["region_code"]: row for row in villages["rows"]}
    assert sorted(by_code) == [TAMILOUW, SEPA, "8171011006"]
    assert subset(by_code[TAMILOUW], TAMILOUW_VALUES) == TAMILOUW_VALUES
    assert (by_code[SEPA]["region_name"], by_code[SEPA]["coverage.households"]) == ("Sepa", 3)
    regencies = await indicators(reporting, tokens.admin(), region="81", period=maluku.period, by="regency")
    assert [(r["region_code"], r["region_name"], r["coverage.households"]) for r in regencies["rows"]] == [
        ("8101", "Kabupaten Maluku Tengah", 9), ("8171", "Kota Ambon", 2)]
    national = await indicators(reporting, tokens.admin(), period=maluku.period, by="province")
    [maluku_row] = [r for r in national["rows"] if r["region_code"] == "81"]
    assert subset(maluku_row, MALUKU_VALUES) == MALUKU_VALUES


async def test_a_field_limits_the_columns_and_the_needs_and_referrals(reporting: httpx.AsyncClient,
                                                                     maluku: Published) -> None:
    table = await indicators(reporting, tokens.admin(), region=TAMILOUW, period=maluku.period, field="kesehatan")
    keys = {c["key"] for c in table["columns"]}
    assert "kesehatan.stunting_rate" in keys and "pendidikan.out_of_school" not in keys
    [row] = table["rows"]
    assert (row["needs.detected"], row["needs.open"], row["referrals.created"]) == (3, 3, 6)


async def test_other_periods_hold_only_their_own_flows(reporting: httpx.AsyncClient, maluku: Published) -> None:
    year = maluku.period[:4]
    month = await indicators(reporting, tokens.admin(), region=TAMILOUW, period=maluku.period)
    yearly = await indicators(reporting, tokens.admin(), region=TAMILOUW, period=year)
    # The year also holds the referral and the need of the month before (unless that was last year).
    earlier_in_year = maluku.period[5:] != "01"
    assert yearly["rows"][0]["referrals.created"] == 6 + earlier_in_year
    assert yearly["rows"][0]["needs.detected"] == 4 + earlier_in_year
    assert month["period"]["label"] == maluku.period
    before = await indicators(reporting, tokens.admin(), region=TAMILOUW, period="2001-Q1")
    assert (before["rows"][0]["coverage.households"], before["rows"][0]["referrals.created"]) == (0, 0)


async def test_needs_by_category(reporting: httpx.AsyncClient, maluku: Published) -> None:
    response = await reporting.get("/api/v1/indicators/needs", params={"region": "8101", "period": maluku.period},
                                   headers=tokens.admin())
    rows = {(r["spm_field"], r["category"]): (r["detected"], r["resolved"], r["open"]) for r in response.json()["rows"]}
    assert rows == {("kesehatan", "kesehatan.stunting"): (3, 1, 3),
                    ("pekerjaan-umum", "pekerjaan-umum.sanitation"): (1, 0, 1),
                    ("pendidikan", "pendidikan.ats"): (1, 0, 1)}


async def test_the_matrix_has_a_row_per_agency_and_field(reporting: httpx.AsyncClient, maluku: Published) -> None:
    response = await reporting.get("/api/v1/matrix", params={"region": "8101", "period": maluku.period},
                                   headers=tokens.admin())
    assert response.status_code == 200, response.text
    rows = {(r["agency_id"], r["spm_field"]): r for r in response.json()["rows"]}
    ids = {name: str(agency_id) for name, agency_id in maluku.world.agencies.items()}
    assert set(rows) == {(ids["kesehatan-8101"], "kesehatan"), (ids["pendidikan-8101"], "pendidikan"),
                         (ids["kesehatan-81"], "kesehatan")}  # the inactive agency has no row
    health = rows[(ids["kesehatan-8101"], "kesehatan")]
    assert (health["region_code"], health["kesehatan.children_under_five"], health["kesehatan.stunted"],
            health["referrals.created"], health["referrals.completed"], health["referrals.sla_compliance_rate"]) == (
        "8101", 6, 2, 5, 2, 0.5)
    education = rows[(ids["pendidikan-8101"], "pendidikan")]
    assert (education["pendidikan.out_of_school"], education["referrals.created"]) == (1, 1)
    assert "kesehatan.stunted" not in education
    province = rows[(ids["kesehatan-81"], "kesehatan")]
    assert (province["kesehatan.children_under_five"], province["referrals.created"]) == (6, 0)


async def test_the_timeline_and_the_village_ranking(reporting: httpx.AsyncClient, maluku: Published) -> None:
    params = {"region": "8101", "period": maluku.period}
    timeline = (await reporting.get("/api/v1/indicators/referrals/timeline", params=params,
                                    headers=tokens.admin())).json()
    month = {(r["spm_field"], r["status"]): r["referrals"] for r in timeline["rows"] if r["month"] == maluku.period}
    assert month == {("kesehatan", "completed"): 2, ("kesehatan", "accepted"): 1, ("kesehatan", "rejected"): 1,
                     ("kesehatan", "requested"): 2, ("pendidikan", "requested"): 1}
    ranking = (await reporting.get("/api/v1/rankings/villages", params=params, headers=tokens.admin())).json()
    assert [(r["rank"], r["village_code"], r["village_name"], r["open_needs"]) for r in ranking["rows"]] == [
        (1, TAMILOUW, "Tamilouw", 4), (2, SEPA, "Sepa", 1)]


@pytest.mark.parametrize("params", [{"period": "2026-13"}, {"period": "26-01"}, {"region": "123"},
                                    {"region": "81", "by": "province"}, {"field": "health"}])
async def test_bad_parameters_are_problems(reporting: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await reporting.get("/api/v1/indicators", params=params, headers=tokens.admin())
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
