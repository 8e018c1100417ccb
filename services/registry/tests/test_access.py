"""The registry's access policies, each written once as a query (`posyandu/access.py`, `programmes/access.py`) and
applied by the service functions: who cares for a posyandu (its cadres, its opening days), who manages it, who reads
and who changes a programme; a route with an unknown id is a 404 after authentication and the role check."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from services.registry.tests.riau import (
    INHU_DESA,
    KAMPAR_DESA,
    posyandu_body,
    programme_body,
    riau,
    riau_agency,
    riau_posyandu,
)
from tests.support import tokens


async def test_cadres_are_listed_only_for_those_who_care_for_the_posyandu(registry: httpx.AsyncClient,
                                                                         registry_db: asyncpg.Connection) -> None:
    posyandu = await riau_posyandu(registry, KAMPAR_DESA)
    other = await riau_posyandu(registry, INHU_DESA)
    url = f"/api/v1/posyandu/{posyandu['id']}/cadres"
    assigned = await registry.post(url, json={"name": "Sri Wahyuni", "duties": ["kesehatan"]}, headers=tokens.admin())
    assert assigned.status_code == 201, assigned.text
    carers = {"its kader": tokens.kader([posyandu["id"]]), "the regency's pembina": tokens.pembina("1401"),
              "the province's pembina": tokens.pembina("14"), "an admin": tokens.admin()}
    outsiders = {"another posyandu's kader": tokens.kader([other["id"]]),
                 "another regency's pembina": tokens.pembina("1402"),
                 "an agency": tokens.opd(uuid.uuid4(), ["kesehatan"]), "a service": tokens.service()}

    async def audited() -> int:
        return int(await registry_db.fetchval("SELECT count(*) FROM audit_log WHERE resource_type = "
                                              "'posyandu.cadres' AND resource_id = $1", posyandu["id"]))

    for who, headers in carers.items():
        before = await audited()
        listed = await registry.get(url, headers=headers)
        assert listed.status_code == 200, (who, listed.text)
        assert [c["name"] for c in listed.json()] == ["Sri Wahyuni"]
        assert await audited() == before + 1, who
    before = await audited()
    for who, headers in outsiders.items():
        refused = await registry.get(url, headers=headers)
        assert refused.status_code == 403, (who, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert await audited() == before, "a refused read leaves no audit row"
    unknown = await registry.get(f"/api/v1/posyandu/{uuid.uuid4()}/cadres", headers=tokens.admin())
    assert unknown.status_code == 404


async def test_a_posyandu_is_managed_only_within_the_callers_region(registry: httpx.AsyncClient) -> None:
    posyandu = await riau_posyandu(registry, KAMPAR_DESA)
    url = f"/api/v1/posyandu/{posyandu['id']}"
    for headers in (tokens.pembina("1402"), tokens.pembina("1401012002")):
        refused = await registry.patch(url, json={"name": "Diambil"}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert (await registry.post(f"{url}/deactivate", headers=headers)).status_code == 403
        assert (await registry.post(f"{url}/cadres", json={"name": "Ani", "duties": ["kesehatan"]},
                                    headers=headers)).status_code == 403
    assert (await registry.get(url, headers=tokens.admin())).json()["version"] == 1
    renamed = await registry.patch(url, json={"name": "Posyandu Melati"}, headers=tokens.pembina("1401"))
    assert renamed.status_code == 200, renamed.text
    # A move must land within the caller's region too.
    moved_out = await registry.patch(url, json={"village_code": INHU_DESA}, headers=tokens.pembina("1401"))
    assert moved_out.status_code == 403
    moved = await registry.patch(url, json={"village_code": INHU_DESA}, headers=tokens.pembina("14"))
    assert (moved.status_code, moved.json()["village_code"]) == (200, INHU_DESA)

    outside = await registry.post("/api/v1/posyandu", json=posyandu_body(KAMPAR_DESA), headers=tokens.pembina("1402"))
    assert outside.status_code == 403
    # Within the region the village is checked next: an unknown one is a 422, outside it the 403 comes first.
    unknown_village = posyandu_body("1401019999")
    assert (await registry.post("/api/v1/posyandu", json=unknown_village,
                                headers=tokens.pembina("1401"))).status_code == 422
    assert (await registry.post("/api/v1/posyandu", json=unknown_village,
                                headers=tokens.pembina("1402"))).status_code == 403


async def test_opening_days_are_set_by_those_who_care_for_the_posyandu(registry: httpx.AsyncClient) -> None:
    posyandu = await riau_posyandu(registry, KAMPAR_DESA)
    other = await riau_posyandu(registry, INHU_DESA)
    url = f"/api/v1/posyandu/{posyandu['id']}/schedule"
    rule = {"rule": {"ordinal": "first", "weekday": "monday"}}
    for headers in (tokens.kader([other["id"]]), tokens.pembina("1402"), tokens.opd(uuid.uuid4(), ["kesehatan"])):
        refused = await registry.put(url, json=rule, headers=headers)
        assert refused.status_code == 403, refused.text
    assert (await registry.get(url, headers=tokens.admin())).json()["version"] == 0
    written = await registry.put(url, json=rule, headers=tokens.kader([posyandu["id"]]))
    assert (written.status_code, written.json()["version"]) == (200, 1)
    # The schedule is public notice: any caller reads it.
    assert (await registry.get(url, headers=tokens.kader([other["id"]]))).status_code == 200
    missing = f"/api/v1/posyandu/{uuid.uuid4()}"
    assert (await registry.put(f"{missing}/schedule", json=rule, headers=tokens.admin())).status_code == 404
    assert (await registry.get(f"{missing}/opening-days", params={"from": "2031-01-01"},
                               headers=tokens.admin())).status_code == 404


async def _programme(registry: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    agency = await riau_agency(registry)
    created = await registry.post("/api/v1/programmes", json=programme_body(KAMPAR_DESA),
                                  headers=tokens.opd(agency["id"], ["kesehatan"]))
    assert created.status_code == 201, created.text
    return agency, created.json()


async def test_a_programme_is_read_by_one_rule_alone_and_in_lists(registry: httpx.AsyncClient) -> None:
    agency, programme = await _programme(registry)
    kampar = await riau_posyandu(registry, KAMPAR_DESA)
    inhu = await riau_posyandu(registry, INHU_DESA)
    readers = {"its agency": tokens.opd(agency["id"], ["kesehatan"]),
               "another agency of its field": tokens.opd(uuid.uuid4(), ["kesehatan", "sosial"]),
               "the regency's pembina": tokens.pembina("1401"), "the province's pembina": tokens.pembina("14"),
               "a pembina of its village's district": tokens.pembina("140101"),
               "a kader of a posyandu in its village": tokens.kader([kampar["id"]]),
               "an admin": tokens.admin(), "a service": tokens.service()}
    others = {"an agency of another field": tokens.opd(uuid.uuid4(), ["sosial"]),
              "its own agency with a token of another field": tokens.opd(agency["id"], ["sosial"]),
              "another regency's pembina": tokens.pembina("1402"),
              "a kader of a posyandu elsewhere": tokens.kader([inhu["id"]]),
              "a kader of an unknown posyandu": tokens.kader([uuid.uuid4()])}
    url = f"/api/v1/programmes/{programme['id']}"
    for who, headers in {**readers, **others}.items():
        may = who in readers
        for path in (url, f"{url}/history", f"{url}/realisations"):
            response = await registry.get(path, headers=headers)
            assert response.status_code == (200 if may else 403), (who, path, response.text)
        listed = await registry.get("/api/v1/programmes", params={"agency_id": agency["id"]}, headers=headers)
        assert listed.status_code == 200, listed.text
        assert [p["id"] for p in listed.json()["items"]] == ([programme["id"]] if may else []), who
    assert (await registry.get(f"/api/v1/programmes/{uuid.uuid4()}", headers=tokens.admin())).status_code == 404


async def test_a_programme_is_changed_only_by_its_own_agency_in_its_field(registry: httpx.AsyncClient,
                                                                         registry_db: asyncpg.Connection) -> None:
    agency, programme = await _programme(registry)
    url = f"/api/v1/programmes/{programme['id']}"
    month = {"outputs": [{"code": "pmt-packages", "quantity": 40}], "spent": [{"source": "apbd-regency",
                                                                                "amount": 1_000_000}]}
    for headers in (tokens.opd(agency["id"], ["sosial"]), tokens.opd(uuid.uuid4(), ["kesehatan"]),
                    tokens.pembina("1401"), tokens.service()):
        patched = await registry.patch(url, json={"name": "Diambil"}, headers={**headers, "If-Match": '"1"'})
        assert patched.status_code == 403, patched.text
        realised = await registry.put(f"{url}/realisations/2031-01", json=month, headers=headers)
        assert realised.status_code == 403, realised.text
    assert await registry_db.fetchval("SELECT count(*) FROM programme_history WHERE programme_id = $1",
                                      uuid.UUID(programme["id"])) == 1
    owner = tokens.opd(agency["id"], ["kesehatan"])
    changed = await registry.patch(url, json={"name": "PMT Kampar Lanjutan"}, headers={**owner, "If-Match": '"1"'})
    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    assert (await registry.put(f"{url}/realisations/2031-01", json=month, headers=owner)).status_code == 200
    missing = f"/api/v1/programmes/{uuid.uuid4()}"
    assert (await registry.patch(missing, json={"name": "X"}, headers={**owner, "If-Match": '"1"'})).status_code == 404


async def test_a_route_with_an_unknown_id_authenticates_and_checks_the_role_first(
        registry: httpx.AsyncClient) -> None:
    await riau(registry)
    unknown = uuid.uuid4()
    paths = [f"/api/v1/posyandu/{unknown}", f"/api/v1/posyandu/{unknown}/schedule", f"/api/v1/agencies/{unknown}",
             f"/api/v1/programmes/{unknown}", "/api/v1/regions/1401019999"]
    for path in paths:
        assert (await registry.get(path)).status_code == 401, path
        assert (await registry.get(path, headers=tokens.admin())).status_code == 404, path
    # A role that may never change the aggregate is refused before the look-up, as before.
    kader = tokens.kader([uuid.uuid4()])
    assert (await registry.patch(f"/api/v1/posyandu/{unknown}", json={"name": "X"}, headers=kader)).status_code == 403
    assert (await registry.patch(f"/api/v1/agencies/{unknown}", json={"name": "X"}, headers=kader)).status_code == 403
    assert (await registry.get("/api/v1/regions/1401")).status_code == 401
