"""Posyandu and cadres: register, idempotent creates, optimistic concurrency, scoping, filters, audit."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.registry.tests.factories import GAMBIR, LEBAK_DESA, SAMARINDA_VILLAGE, create_posyandu, posyandu_body
from tests.support import tokens


async def test_register_returns_the_posyandu_with_etag_and_location(registry: httpx.AsyncClient) -> None:
    body = posyandu_body(GAMBIR, latitude=-6.17, longitude=106.82)
    response = await registry.post("/api/v1/posyandu", json=body, headers=tokens.pembina("3171"))
    assert response.status_code == 201
    created = response.json()
    assert {k: created[k] for k in body} == body
    assert (created["status"], created["version"]) == ("active", 1)
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/api/v1/posyandu/{created['id']}"


async def test_same_idempotency_key_and_body_replays_the_first_result(registry: httpx.AsyncClient,
                                                                      registry_db: asyncpg.Connection) -> None:
    body = posyandu_body()
    headers = {**tokens.admin(), "Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await registry.post("/api/v1/posyandu", json=body, headers=headers)
    second = await registry.post("/api/v1/posyandu", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu WHERE code = $1", body["code"]) == 1

    other = await registry.post("/api/v1/posyandu", json={**body, "name": "Lain"}, headers=headers)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"


async def test_duplicate_code_is_a_conflict(registry: httpx.AsyncClient) -> None:
    created = await create_posyandu(registry)
    again = await registry.post("/api/v1/posyandu", json=posyandu_body(code=created["code"]), headers=tokens.admin())
    assert again.status_code == 409


async def test_bad_input_is_refused_and_changes_nothing(registry: httpx.AsyncClient,
                                                        registry_db: asyncpg.Connection) -> None:
    count = await registry_db.fetchval("SELECT count(*) FROM posyandu")
    outbox = await registry_db.fetchval("SELECT count(*) FROM outbox")
    bad_bodies = [
        posyandu_body("3171019999"),  # unknown village
        posyandu_body("317101"),  # a district, not a village
        posyandu_body("31710110O1"),  # not digits
        posyandu_body(latitude=95.0),  # off the globe
        posyandu_body(service_days=["someday"]),
        posyandu_body(name="x" * 201),
        {**posyandu_body(), "status": "inactive"},  # not settable (mass assignment)
        {**posyandu_body(), "id": str(uuid.uuid4())},
    ]
    for body in bad_bodies:
        response = await registry.post("/api/v1/posyandu", json=body, headers=tokens.admin())
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"], body
    not_json = await registry.post("/api/v1/posyandu", content=b"{not json", headers={
        **tokens.admin(), "Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu") == count
    assert await registry_db.fetchval("SELECT count(*) FROM outbox") == outbox


async def test_update_honours_if_match(registry: httpx.AsyncClient) -> None:
    created = await create_posyandu(registry)
    url = f"/api/v1/posyandu/{created['id']}"
    updated = await registry.patch(url, json={"name": "Posyandu Baru"}, headers={**tokens.admin(), "If-Match": '"1"'})
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["version"], updated.headers["etag"]) == ("Posyandu Baru", 2, '"2"')
    stale = await registry.patch(url, json={"name": "Kalah"}, headers={**tokens.admin(), "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == '"2"'
    assert (await registry.get(url, headers=tokens.admin())).json()["name"] == "Posyandu Baru"


async def test_moving_to_an_unknown_village_is_refused(registry: httpx.AsyncClient) -> None:
    created = await create_posyandu(registry)
    response = await registry.patch(f"/api/v1/posyandu/{created['id']}", json={"village_code": "3171019999"},
                                    headers=tokens.admin())
    assert response.status_code == 422


async def test_pembina_manages_only_within_their_region(registry: httpx.AsyncClient) -> None:
    outside = await registry.post("/api/v1/posyandu", json=posyandu_body(SAMARINDA_VILLAGE),
                                  headers=tokens.pembina("3171"))
    assert outside.status_code == 403
    theirs = await create_posyandu(registry, SAMARINDA_VILLAGE)
    patch = await registry.patch(f"/api/v1/posyandu/{theirs['id']}", json={"name": "Diambil"},
                                 headers=tokens.pembina("3171"))
    assert patch.status_code == 403
    moved_out = await registry.patch(f"/api/v1/posyandu/{(await create_posyandu(registry))['id']}",
                                     json={"village_code": SAMARINDA_VILLAGE}, headers=tokens.pembina("3171"))
    assert moved_out.status_code == 403


async def test_kader_and_opd_cannot_register(registry: httpx.AsyncClient) -> None:
    for headers in (tokens.kader([uuid.uuid4()]), tokens.opd(uuid.uuid4(), ["kesehatan"]), tokens.service()):
        assert (await registry.post("/api/v1/posyandu", json=posyandu_body(), headers=headers)).status_code == 403


async def test_deactivate_keeps_the_posyandu_and_refuses_new_cadres(registry: httpx.AsyncClient) -> None:
    created = await create_posyandu(registry)
    url = f"/api/v1/posyandu/{created['id']}"
    response = await registry.post(f"{url}/deactivate", headers=tokens.admin())
    assert (response.status_code, response.json()["status"]) == (200, "inactive")
    cadre = await registry.post(f"{url}/cadres", json={"name": "Ani", "duties": ["kesehatan"]},
                                headers=tokens.admin())
    assert cadre.status_code == 409


async def test_cadres_assign_update_unassign_and_reads_are_audited(registry: httpx.AsyncClient,
                                                                  registry_db: asyncpg.Connection) -> None:
    posyandu = await create_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu['id']}/cadres"
    assigned = await registry.post(url, json={"name": "Ani Lestari", "duties": ["kesehatan", "sosial"],
                                              "phone": "+62 811 1234 567"}, headers=tokens.admin())
    assert assigned.status_code == 201
    cadre = assigned.json()
    assert cadre["duties"] == ["kesehatan", "sosial"]
    bad = await registry.post(url, json={"name": "Ani", "duties": ["kebersihan"]}, headers=tokens.admin())
    assert bad.status_code == 422

    reader = tokens.kader([posyandu["id"]])
    listed = await registry.get(url, headers=reader)
    assert [c["name"] for c in listed.json()] == ["Ani Lestari"]
    audit = await registry_db.fetch("SELECT actor, actor_role, purpose, fields FROM audit_log "
                                    "WHERE resource_type = 'posyandu.cadres' AND resource_id = $1", posyandu["id"])
    assert len(audit) == 1 and audit[0]["actor_role"] == "kader" and "phone" in audit[0]["fields"]

    updated = await registry.patch(f"{url}/{cadre['id']}", json={"duties": ["pendidikan"]},
                                   headers={**tokens.admin(), "If-Match": '"1"'})
    assert (updated.status_code, updated.json()["duties"]) == (200, ["pendidikan"])
    gone = await registry.delete(f"{url}/{cadre['id']}", headers=tokens.admin())
    assert gone.json()["status"] == "inactive"
    assert (await registry.get(url, headers=reader)).json() == []
    assert len((await registry.get(url, params={"include_inactive": "true"}, headers=reader)).json()) == 1
    other = await create_posyandu(registry)
    wrong_parent = await registry.delete(f"/api/v1/posyandu/{other['id']}/cadres/{cadre['id']}",
                                         headers=tokens.admin())
    assert wrong_parent.status_code == 404


async def test_list_filters_by_region_status_and_field(registry: httpx.AsyncClient) -> None:
    lebak = await create_posyandu(registry, LEBAK_DESA)
    await registry.post(f"/api/v1/posyandu/{lebak['id']}/cadres", json={"name": "Iwan", "duties": ["trantibumlinmas"]},
                        headers=tokens.admin())
    inactive = await create_posyandu(registry, LEBAK_DESA)
    await registry.post(f"/api/v1/posyandu/{inactive['id']}/deactivate", headers=tokens.admin())

    async def ids(**params: str) -> set[str]:
        found: set[str] = set()
        cursor = None
        while True:
            query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await registry.get("/api/v1/posyandu", params=query, headers=tokens.admin())).json()
            found |= {p["id"] for p in page["items"]}
            if not (cursor := page["next_cursor"]):
                return found

    in_lebak = await ids(region="3602")
    assert {lebak["id"], inactive["id"]} <= in_lebak
    assert inactive["id"] not in await ids(region="3602", status="active")
    assert await ids(region="3602", field="trantibumlinmas") == {lebak["id"]}
    assert lebak["id"] not in await ids(region="3171")


async def test_counts_per_region(registry: httpx.AsyncClient) -> None:
    before = {r["region_code"]: r["posyandu"] for r in
              (await registry.get("/api/v1/posyandu/counts", params={"region": "3602"}, headers=tokens.admin())).json()}
    await create_posyandu(registry, LEBAK_DESA)
    after = (await registry.get("/api/v1/posyandu/counts", params={"region": "3602"}, headers=tokens.admin())).json()
    district = LEBAK_DESA[:6]
    row = next(r for r in after if r["region_code"] == district)
    assert row["posyandu"] == before.get(district, 0) + 1
    assert row["region_name"] == "Malingping"
    bad = await registry.get("/api/v1/posyandu/counts", params={"region": "360"}, headers=tokens.admin())
    assert bad.status_code == 422


async def test_unknown_posyandu_is_404(registry: httpx.AsyncClient) -> None:
    response = await registry.get(f"/api/v1/posyandu/{uuid.uuid4()}", headers=tokens.admin())
    assert response.status_code == 404 and response.json()["title"] == "Not found"
    assert (await registry.get("/api/v1/posyandu/not-a-uuid", headers=tokens.admin())).status_code == 422
