"""The HTTP conventions every service shares: problem+json, body limit, cursors, probes, metrics, request ids."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.observability import adopt_request_id
from tests.support import tokens


async def test_oversized_body_is_413_problem(registry: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    response = await registry.post("/api/v1/posyandu", content=body,
                                   headers={**tokens.admin(), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


async def test_oversized_body_without_content_length_is_413(registry: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100_000

    response = await registry.post("/api/v1/posyandu", content=chunks(),
                                   headers={**tokens.admin(), "Content-Type": "application/json"})
    assert response.status_code == 413


async def test_bad_cursor_and_limit_are_4xx_problems(registry: httpx.AsyncClient) -> None:
    for params in ({"cursor": "not-ours"}, {"cursor": "WzEsMiwzXQ"}):
        response = await registry.get("/api/v1/posyandu", params=params, headers=tokens.admin())
        assert response.status_code == 400, params
        assert response.headers["content-type"] == "application/problem+json"
    for limit in ("0", "501", "many"):
        assert (await registry.get("/api/v1/regions", params={"limit": limit}, headers=tokens.admin())
                ).status_code == 422


async def test_unknown_path_and_method_are_problems(registry: httpx.AsyncClient) -> None:
    missing = await registry.get("/api/v1/nothing-here", headers=tokens.admin())
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    method = await registry.put("/api/v1/regions", headers=tokens.admin())
    assert (method.status_code, method.headers["content-type"]) == (405, "application/problem+json")


async def test_probes_metrics_and_request_id(registry: httpx.AsyncClient) -> None:
    assert (await registry.get("/healthz")).json() == {"status": "ok"}
    ready = await registry.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    await registry.get("/api/v1/regions/31", headers={**tokens.admin(), "X-Request-ID": "trace-me-123"})
    metrics = (await registry.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v1/regions/{code}",service="registry",status="200"}' \
        in metrics
    assert "outbox_backlog" in metrics and "outbox_relay_leader" in metrics
    echoed = await registry.get("/healthz", headers={"X-Request-ID": "abc"})
    assert echoed.headers["x-request-id"] == "abc"


@pytest.mark.parametrize("inbound, adopted", [
    ("abc", True), ("0f8e2c1a9b7d4e6f8a1b2c3d4e5f6a7b", True), ("trace-me.1:2_3", True), ("x" * 64, True),
    ("x" * 65, False), ("", False), ("-leading-dash", False), ("two words", False), ("a\tb", False),
    ("id\u00e9", False), ("a\"b", False), ("a;b", False), ("{\"role\":\"admin\"}", False), (None, False)])
def test_a_callers_request_id_is_adopted_only_when_safe(inbound: str | None, adopted: bool) -> None:
    request_id = adopt_request_id(inbound)
    assert (request_id == inbound) is adopted
    assert re.fullmatch(r"[0-9a-f]{32}", request_id) or adopted


async def test_openapi_documents_every_route(registry: httpx.AsyncClient) -> None:
    spec = (await registry.get("/openapi.json")).json()
    assert {"/api/v1/regions/{code}", "/api/v1/posyandu", "/api/v1/agencies/route", "/api/v1/audit-log"} \
        <= set(spec["paths"])
    assert (await registry.get("/docs")).status_code == 200


async def test_audit_log_is_for_admins(registry: httpx.AsyncClient) -> None:
    assert (await registry.get("/api/v1/audit-log", headers=tokens.pembina("31"))).status_code == 403
    page = (await registry.get("/api/v1/audit-log", params={"limit": "5"}, headers=tokens.admin())).json()
    assert set(page) == {"items", "next_cursor"}
