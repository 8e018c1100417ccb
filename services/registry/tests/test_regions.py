"""Regions: look-ups, children, search, kinds from the code, and the import's validation."""

from __future__ import annotations

import asyncpg
import httpx

from services.registry.demo import demo_regions
from tests.support import tokens


async def test_look_up_a_village_by_code(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/api/v1/regions/3171011001", headers=tokens.kader([]))
    assert response.status_code == 200
    assert response.json() == {"code": "3171011001", "name": "Gambir", "level": "village", "parent_code": "317101",
                               "kind": "kelurahan", "list_version": "kepmendagri-300.2.2-2138-2025",
                               "retired": False}


async def test_kind_comes_from_the_code(registry: httpx.AsyncClient) -> None:
    desa = (await registry.get("/api/v1/regions/3602012002", headers=tokens.admin())).json()
    assert desa["kind"] == "desa"
    kota = (await registry.get("/api/v1/regions/6472", headers=tokens.admin())).json()
    assert (kota["name"], kota["kind"], kota["level"]) == ("Kota Samarinda", "kota", "regency")
    kabupaten = (await registry.get("/api/v1/regions/7602", headers=tokens.admin())).json()
    assert (kabupaten["name"], kabupaten["kind"]) == ("Kabupaten Mamuju", "kabupaten")


async def test_children_are_listed_in_code_order_across_pages(registry: httpx.AsyncClient) -> None:
    codes: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await registry.get("/api/v1/regions/3171/children", params=params, headers=tokens.admin())).json()
        codes += [r["code"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted(code for code, _ in demo_regions() if len(code) == 6 and code.startswith("3171"))
    assert codes == expected and len(codes) == 8


async def test_search_by_part_of_the_name(registry: httpx.AsyncClient) -> None:
    page = (await registry.get("/api/v1/regions", params={"q": "samarinda"}, headers=tokens.admin())).json()
    assert {"6472"} <= {r["code"] for r in page["items"]}
    assert all("samarinda" in r["name"].lower() for r in page["items"])
    # LIKE wildcards in the query are taken literally.
    assert (await registry.get("/api/v1/regions", params={"q": "%%"}, headers=tokens.admin())).json()["items"] == []


async def test_unknown_and_malformed_codes(registry: httpx.AsyncClient) -> None:
    missing = await registry.get("/api/v1/regions/9999", headers=tokens.admin())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    malformed = await registry.get("/api/v1/regions/123", headers=tokens.admin())
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "path.code"


async def test_a_bad_list_is_refused_whole(registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM regions")
    outbox_before = await registry_db.fetchval("SELECT count(*) FROM outbox")
    csv = "kode,nama\n31.71.01.9001,Kelurahan Baru\n31.7X,Bad Code\n"
    response = await registry.post("/api/v1/regions/import", content=csv,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "line 3", "message": "not a region code: '31.7X'"}]
    orphan = await registry.post("/api/v1/regions/import", content="kode,nama\n99.01,Nowhere\n",
                                 headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert orphan.status_code == 422 and "parent 99" in orphan.json()["errors"][0]["message"]
    no_header = await registry.post("/api/v1/regions/import", content="31,Jakarta\n",
                                    headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert no_header.status_code == 422
    as_json = await registry.post("/api/v1/regions/import", json={"kode": "31"}, headers=tokens.admin())
    assert as_json.status_code == 415
    assert await registry_db.fetchval("SELECT count(*) FROM regions") == before
    assert await registry_db.fetchval("SELECT count(*) FROM outbox") == outbox_before


async def test_only_an_admin_imports(registry: httpx.AsyncClient) -> None:
    response = await registry.post("/api/v1/regions/import", content="kode,nama\n31,X\n",
                                   headers={**tokens.pembina("31"), "Content-Type": "text/csv"})
    assert response.status_code == 403
