"""Crafted cursors: a cursor of our shape (base64 of a JSON list) with values no page gave is never a 5xx.

A value of the keyset's type is a legitimate place to start (a region code keyset takes any text), so the answer
may be a page; a value that is not (a time that is no time, an integer past PostgreSQL's bigint) is a 400.
"""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

from tests.support import tokens


def _craft(*values: object) -> str:
    """A cursor as ours are made (base64 of a JSON list), with any JSON values, huge integers included."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


#: Cursors a client could build by hand: the shape of ours (a JSON list, base64) with values no page ever gave.
CRAFTED = [
    _craft("not a time", str(uuid.uuid4())),
    _craft("2026-13-45T99:00:00", str(uuid.uuid4())),
    _craft(2**70),
    _craft(-(2**70)),
    _craft("x" * 300),
    _craft("2026-01-01T00:00:00+00:00", "not-a-uuid"),
    _craft(True, None),
]


async def _list_operations(client: httpx.AsyncClient) -> list[str]:
    document = (await client.get("/openapi.json")).json()
    return [path for path, item in document["paths"].items()
            if "{" not in path and any(p.get("name") == "cursor" for p in item.get("get", {}).get("parameters", []))]


@pytest.fixture
def clients(registry: httpx.AsyncClient, household: httpx.AsyncClient,
            referral: httpx.AsyncClient) -> dict[str, httpx.AsyncClient]:
    return {"registry": registry, "household": household, "referral": referral}


@pytest.mark.parametrize("service", ["registry", "household", "referral"])
async def test_a_crafted_cursor_is_never_a_server_error(service: str, clients: dict[str, httpx.AsyncClient]) -> None:
    client = clients[service]
    paths = await _list_operations(client)
    assert paths, f"{service} documents no list with a cursor"
    failures = []
    for path in paths:
        for cursor in CRAFTED:
            response = await client.get(path, params={"cursor": cursor}, headers=tokens.admin())
            if response.status_code >= 500:
                failures.append((path, cursor, response.status_code, response.text[:200]))
    assert not failures, failures
