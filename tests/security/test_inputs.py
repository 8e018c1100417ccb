"""Mass assignment, oversized and deeply nested bodies, unbounded lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.household.app import create_app as create_household_app
from services.referral.app import create_app as create_referral_app
from services.registry.app import create_app as create_registry_app
from tests.security.conftest import SecurityWorld, site_a_state
from tests.support import tokens

W = SecurityWorld
Clients = dict[str, httpx.AsyncClient]


@pytest.fixture
def clients(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient) -> Clients:
    return {"registry": registry, "household": household, "referral": referral}


def _household_body(w: W, **extra: Any) -> dict[str, Any]:
    return {"kk_number": "3172011401190001", "village_code": w.a.village_code, "posyandu_id": w.a.posyandu_id,
            "members": [{"name": "Dewi", "sex": "female", "birth_date": "1990-01-01", "relationship": "head"}],
            **extra}


#: (service, method, path, body, caller, forbidden field): a field the caller may not set, on create or update.
MASS_ASSIGNMENT: list[tuple[str, str, Callable[[W], str], Callable[[W], dict[str, Any]],
                            Callable[[W], dict[str, str]], str]] = [
    ("household", "POST", lambda w: "/api/v1/households", lambda w: _household_body(w, id=w.b.household_id),
     lambda w: w.a.kader(), "id"),
    ("household", "POST", lambda w: "/api/v1/households", lambda w: _household_body(w, status="moved"),
     lambda w: w.a.kader(), "status"),
    ("household", "POST", lambda w: "/api/v1/households", lambda w: _household_body(w, created_by="admin-test"),
     lambda w: w.a.kader(), "created_by"),
    ("household", "PATCH", lambda w: f"/api/v1/households/{w.a.household_id}",
     lambda w: {"posyandu_id": w.b.posyandu_id}, lambda w: w.a.kader(), "posyandu_id"),
    ("household", "PATCH", lambda w: f"/api/v1/households/{w.a.household_id}", lambda w: {"version": 99},
     lambda w: w.a.kader(), "version"),
    ("household", "PATCH", lambda w: f"/api/v1/households/{w.a.household_id}", lambda w: {"status": "moved"},
     lambda w: w.a.kader(), "status"),
    ("household", "PATCH", lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}",
     lambda w: {"household_id": w.b.household_id}, lambda w: w.a.kader(), "household_id"),
    ("household", "PATCH", lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}",
     lambda w: {"status": "merged"}, lambda w: w.a.kader(), "status"),
    ("registry", "PATCH", lambda w: f"/api/v1/posyandu/{w.a.posyandu_id}", lambda w: {"status": "inactive"},
     lambda w: tokens.admin(), "status"),
    ("registry", "PATCH", lambda w: f"/api/v1/posyandu/{w.a.posyandu_id}", lambda w: {"code": "TAKEN"},
     lambda w: tokens.admin(), "code"),
    ("registry", "PATCH", lambda w: f"/api/v1/agencies/{w.a.agency_id}", lambda w: {"jurisdiction_code": "31"},
     lambda w: tokens.admin(), "jurisdiction_code"),
    ("registry", "PATCH", lambda w: f"/api/v1/agencies/{w.a.agency_id}", lambda w: {"version": 7},
     lambda w: tokens.admin(), "version"),
    ("registry", "PATCH", lambda w: f"/api/v1/posyandu/{w.a.posyandu_id}/cadres/{w.a.cadre_id}",
     lambda w: {"posyandu_id": w.b.posyandu_id}, lambda w: tokens.admin(), "posyandu_id"),
    ("referral", "POST", lambda w: "/api/v1/referrals", lambda w: {
        "household_id": w.a.household_id, "spm_field": "kesehatan", "category": "kesehatan.immunization",
        "reason": "x", "agency_id": w.b.agency_id}, lambda w: w.a.kader(), "agency_id"),
    ("referral", "POST", lambda w: "/api/v1/referrals", lambda w: {
        "household_id": w.a.household_id, "spm_field": "kesehatan", "category": "kesehatan.immunization",
        "reason": "x", "status": "completed"}, lambda w: w.a.kader(), "status"),
    ("referral", "POST", lambda w: f"/api/v1/referrals/{w.a.referral_id}/accept",
     lambda w: {"status": "completed"}, lambda w: w.a.opd(), "status"),
    ("referral", "POST", lambda w: f"/api/v1/referrals/{w.a.referral_id}/notes",
     lambda w: {"text": "catatan", "author_side": "system"}, lambda w: w.a.opd(), "author_side"),
    ("household", "POST", lambda w: "/api/v1/sessions", lambda w: {
        "posyandu_id": w.a.posyandu_id, "session_date": "2026-01-13", "status": "closed"}, lambda w: w.a.kader(),
     "status"),
    ("household", "POST", lambda w: f"/api/v1/sessions/{w.session_id}/visits", lambda w: {
        "member_id": w.a.member_id, "counselling": ["nutrition"], "life_cycle_group": "infant"},
     lambda w: w.a.kader(), "life_cycle_group"),
]


@pytest.mark.parametrize("case", MASS_ASSIGNMENT, ids=[f"{c[0]} {c[1]} {c[5]}" for c in MASS_ASSIGNMENT])
async def test_fields_a_caller_may_not_set_are_refused(case: tuple[Any, ...], security_world: W,
                                                       clients: Clients) -> None:
    service, method, path, body, caller, forbidden = case
    before = await site_a_state(security_world, clients["registry"], clients["household"], clients["referral"])
    response = await clients[service].request(method, path(security_world), json=body(security_world),
                                              headers=caller(security_world))
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(forbidden) for e in response.json()["errors"]), response.text
    assert await site_a_state(security_world, clients["registry"], clients["household"], clients["referral"]) == before


WRITES = [("registry", "/api/v1/agencies"), ("household", "/api/v1/households"), ("referral", "/api/v1/referrals")]


@pytest.mark.parametrize(("service", "path"), WRITES)
async def test_oversized_bodies_are_413_even_without_a_content_length(service: str, path: str,
                                                                      clients: Clients) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = await clients[service].post(path, content=big, headers={**tokens.admin(),
                                                                        "Content-Type": "application/json"})
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    streamed = await clients[service].post(path, content=chunks(), headers={**tokens.admin(),
                                                                             "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"


NESTED_TARGETS = [("registry", "POST", lambda w: "/api/v1/agencies"),
                  ("household", "POST", lambda w: "/api/v1/households"),
                  ("household", "PUT", lambda w: f"/api/v1/households/{w.a.household_id}/profiles/kesehatan"),
                  ("referral", "POST", lambda w: "/api/v1/referrals"),
                  ("referral", "POST", lambda w: f"/api/v1/referrals/{w.a.referral_id}/notes")]


@pytest.mark.parametrize("shape", ["array", "object"])
@pytest.mark.parametrize(("service", "method", "path"), NESTED_TARGETS,
                         ids=[f"{s} {m} {i}" for i, (s, m, _) in enumerate(NESTED_TARGETS)])
async def test_a_body_nested_10000_levels_is_a_4xx_quickly(service: str, method: str, path: Callable[[W], str],
                                                          shape: str, security_world: W, clients: Clients) -> None:
    depth = 10_000
    body = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    async with asyncio.timeout(10):
        response = await clients[service].request(method, path(security_world), content=body.encode(),
                                                  headers={**tokens.admin(), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def _list_routes() -> list[tuple[str, str]]:
    """Every GET operation with a `limit` parameter, from the documents."""
    found = []
    for service, app in {"registry": create_registry_app(), "household": create_household_app(),
                         "referral": create_referral_app()}.items():
        for path, item in app.openapi()["paths"].items():
            get = item.get("get")
            if get and any(p["name"] == "limit" for p in get.get("parameters", [])):
                found.append((service, path))
    return found


LIST_ROUTES = _list_routes()


def _fill(path: str, w: W) -> str:
    return (path.replace("{household_id}", w.a.household_id).replace("{agency_id}", w.a.agency_id)
            .replace("{code}", "3172").replace("{posyandu_id}", w.a.posyandu_id)
            .replace("{subscription_id}", w.webhook_id).replace("{session_id}", w.session_id)
            .replace("{member_id}", w.a.member_id).replace("{programme_id}", w.programme_id))


@pytest.mark.parametrize(("service", "path"), LIST_ROUTES, ids=[f"{s} {p}" for s, p in LIST_ROUTES])
async def test_page_sizes_are_bounded(service: str, path: str, security_world: W, clients: Clients) -> None:
    url = _fill(path, security_world)
    assert "{" not in url, f"no object for {path}: add it to _fill"
    for limit in ("501", "100000", "0", "-1"):
        response = await clients[service].get(url, params={"limit": limit}, headers=tokens.admin())
        assert response.status_code == 422, (limit, response.text)
    assert (await clients[service].get(url, params={"limit": "500"}, headers=tokens.admin())).status_code == 200


async def test_the_default_page_size_applies(clients: Clients) -> None:
    regions = (await clients["registry"].get("/api/v1/regions", params={"parent": "3172"},
                                             headers=tokens.admin())).json()
    every = await clients["registry"].get("/api/v1/regions", headers=tokens.admin())
    page = every.json()
    assert len(page["items"]) == 50 and page["next_cursor"], "the default page size is 50"
    assert len(regions["items"]) <= 50
    audit = (await clients["household"].get("/api/v1/audit-log", headers=tokens.admin())).json()
    assert len(audit["items"]) <= 50
