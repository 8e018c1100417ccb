"""Small cells are suppressed for everyone but an admin; each role sees only its region, fields or villages."""

from __future__ import annotations

import uuid

import httpx

from services.reporting.tests.conftest import Published
from services.reporting.tests.scenario import SEPA, TAMILOUW
from tests.support import tokens


async def test_small_counts_and_what_derives_from_them_are_suppressed(reporting: httpx.AsyncClient,
                                                                      maluku: Published) -> None:
    response = await reporting.get("/api/v1/indicators", params={"region": TAMILOUW, "period": maluku.period},
                                   headers=tokens.pembina("81"))
    assert response.status_code == 200, response.text
    table = response.json()
    assert table["suppression_threshold"] == 5
    [row] = table["rows"]
    # Five or more: shown; below five (zero included): null and listed.
    assert (row["coverage.households"], row["coverage.members"], row["kesehatan.children_measured"]) == (6, 12, 5)
    assert row["kesehatan.measured_rate"] == 0.8333  # 5 / 6: both shown
    for key in ("coverage.infant", "coverage.school_age", "kesehatan.stunted", "kesehatan.stunting_rate",
                "referrals.responded", "referrals.response_hours_median", "referrals.completion_hours_p90",
                "referrals.sla_compliance_rate", "pekerjaan-umum.open_defecation"):
        assert row[key] is None and key in row["suppressed"], key
    assert "coverage.households" not in row["suppressed"]
    # The matrix and the other tables alike.
    matrix = (await reporting.get("/api/v1/matrix", params={"region": "8101", "period": maluku.period},
                                  headers=tokens.pembina("81"))).json()
    health = next(r for r in matrix["rows"] if r["agency_id"] == str(maluku.world.agencies["kesehatan-8101"]))
    # 2 completed: small; 5 created: withheld, since the province agency's none would be the region's minus them.
    assert (health["referrals.created"], health["referrals.completed"]) == (None, None)
    ranking = (await reporting.get("/api/v1/rankings/villages", params={"region": "8101", "period": maluku.period},
                                   headers=tokens.pembina("81"))).json()
    assert [(r["village_code"], r["open_needs"], r["suppressed"]) for r in ranking["rows"]] == [
        (TAMILOUW, None, ["open_needs"]), (SEPA, None, ["open_needs"])]


async def test_a_pembina_sees_only_their_region(reporting: httpx.AsyncClient, maluku: Published) -> None:
    pembina = tokens.pembina("8171")
    outside = await reporting.get("/api/v1/indicators", params={"region": "8101", "period": maluku.period},
                                  headers=pembina)
    assert outside.status_code == 403
    assert (await reporting.get("/api/v1/matrix", params={"region": "81"}, headers=pembina)).status_code == 403
    assert (await reporting.get("/api/v1/indicators", params={"region": ""}, headers=pembina)).status_code == 403
    own = (await reporting.get("/api/v1/indicators", params={"period": maluku.period}, headers=pembina)).json()
    assert own["region"] == "8171" and own["rows"][0]["coverage.households"] is None  # 2 households: suppressed
    params = {"region": "81", "period": maluku.period, "by": "regency"}
    wider = (await reporting.get("/api/v1/indicators", params=params, headers=tokens.pembina("81"))).json()
    # Kota Ambon's 2 households would be Maluku's 11 minus Maluku Tengah's 9: that one is withheld with it.
    assert [(r["region_code"], r["coverage.households"]) for r in wider["rows"]] == [("8101", None), ("8171", None)]


async def test_an_agency_sees_its_fields_within_its_jurisdiction(reporting: httpx.AsyncClient,
                                                                 maluku: Published) -> None:
    agency = tokens.opd(maluku.world.agencies["kesehatan-8101"], ["kesehatan"])
    own = await reporting.get("/api/v1/indicators", params={"period": maluku.period}, headers=agency)
    assert own.status_code == 200, own.text
    table = own.json()
    assert table["region"] == "8101"
    keys = {c["key"] for c in table["columns"]}
    assert "kesehatan.stunting_rate" in keys and not any(k.startswith("pendidikan.") for k in keys)
    # Its 6 kesehatan referrals are withheld: Kota Ambon's none would be Maluku's 6 minus them.
    assert table["rows"][0]["referrals.created"] is None and "referrals.created" in table["rows"][0]["suppressed"]
    other_field = await reporting.get("/api/v1/indicators", params={"field": "pendidikan"}, headers=agency)
    assert other_field.status_code == 403
    other_region = await reporting.get("/api/v1/indicators", params={"region": "8171"}, headers=agency)
    assert other_region.status_code == 403
    matrix = (await reporting.get("/api/v1/matrix", params={"period": maluku.period}, headers=agency)).json()
    assert {r["spm_field"] for r in matrix["rows"]} == {"kesehatan"}
    unknown = tokens.opd(uuid.uuid4(), ["kesehatan"])
    assert (await reporting.get("/api/v1/indicators", headers=unknown)).status_code == 403


async def test_a_kader_sees_only_their_posyandus_villages(reporting: httpx.AsyncClient, maluku: Published) -> None:
    kader = tokens.kader([maluku.world.posyandu_tamilouw])
    own = await reporting.get("/api/v1/indicators", params={"period": maluku.period}, headers=kader)
    assert own.status_code == 200, own.text
    assert own.json()["region"] == TAMILOUW and own.json()["rows"][0]["coverage.households"] == 6
    for region in (SEPA, "810101", "81"):
        refused = await reporting.get("/api/v1/indicators", params={"region": region}, headers=kader)
        assert refused.status_code == 403, region
    assert (await reporting.get("/api/v1/indicators", headers=tokens.kader([uuid.uuid4()]))).status_code == 403


async def test_every_report_needs_a_token(reporting: httpx.AsyncClient) -> None:
    for path in ("/api/v1/indicators", "/api/v1/matrix", "/api/v1/indicators/needs", "/api/v1/rankings/villages"):
        assert (await reporting.get(path)).status_code == 401
