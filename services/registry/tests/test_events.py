"""Every registry change is an event on posyandu.registry.v1, read here by a plain aiokafka consumer."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import asyncpg
import httpx

from conftest import Stack
from services.registry.app import asyncapi
from services.registry.tests.factories import GAMBIR, create_agency, create_posyandu
from tests.support import tokens
from tests.support.kafka import events_about, read_topic

TOPIC = "posyandu.registry.v1"


async def test_posyandu_registered_event_carries_the_cloudevents_envelope(registry: httpx.AsyncClient,
                                                                         stack: Stack) -> None:
    created = await create_posyandu(registry, GAMBIR)
    received = await read_topic(stack.broker.bootstrap_servers, TOPIC,
                                until=lambda rs: bool(events_about(rs, created["id"])))
    record = next(r for r in received if r.event and r.event.subject == created["id"])
    raw = json.loads(record.record.value)
    assert raw["specversion"] == "1.0"
    assert uuid.UUID(raw["id"])
    assert raw["source"] == "/posyandu/registry"
    assert raw["type"] == "posyandu.posyandu.registered.v1"
    assert raw["subject"] == created["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", raw["time"])
    assert raw["datacontenttype"] == "application/json"
    assert raw["regioncode"] == GAMBIR
    assert raw["data"]["posyandu_id"] == created["id"] and raw["data"]["village_code"] == GAMBIR
    assert record.record.key == created["id"].encode()
    assert record.headers["ce_id"].decode() == raw["id"]
    assert record.headers["ce_type"] == b"posyandu.posyandu.registered.v1"
    assert record.headers["content-type"] == b"application/cloudevents+json"


async def test_each_change_is_an_event_in_order(registry: httpx.AsyncClient, stack: Stack) -> None:
    posyandu = await create_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu['id']}"
    await registry.patch(url, json={"name": "Posyandu Diubah"}, headers=tokens.admin())
    cadre = (await registry.post(f"{url}/cadres", json={"name": "Ani", "duties": ["kesehatan"]},
                                 headers=tokens.admin())).json()
    await registry.patch(f"{url}/cadres/{cadre['id']}", json={"duties": ["sosial"]}, headers=tokens.admin())
    await registry.delete(f"{url}/cadres/{cadre['id']}", headers=tokens.admin())
    await registry.post(f"{url}/deactivate", headers=tokens.admin())
    agency = await create_agency(registry, "1472", ["sosial"])
    await registry.patch(f"/api/v1/agencies/{agency['id']}", json={"name": "Dinas Sosial Kota Dumai"},
                         headers=tokens.admin())
    await registry.post(f"/api/v1/agencies/{agency['id']}/deactivate", headers=tokens.admin())

    received = await read_topic(stack.broker.bootstrap_servers, TOPIC,
                                until=lambda rs: len(events_about(rs, posyandu["id"])) >= 6
                                and len(events_about(rs, agency["id"])) >= 3)
    assert [e.type for e in events_about(received, posyandu["id"])] == [
        "posyandu.posyandu.registered.v1", "posyandu.posyandu.updated.v1", "posyandu.cadre.assigned.v1",
        "posyandu.cadre.updated.v1", "posyandu.cadre.unassigned.v1", "posyandu.posyandu.deactivated.v1"]
    cadre_events = [e for e in events_about(received, posyandu["id"]) if e.type.startswith("posyandu.cadre")]
    assert all("name" not in e.data for e in cadre_events)  # personal data stays behind the API
    assert [e.type for e in events_about(received, agency["id"])] == [
        "posyandu.agency.registered.v1", "posyandu.agency.updated.v1", "posyandu.agency.deactivated.v1"]
    assert [e.data["version"] for e in events_about(received, agency["id"])] == [1, 2, 3]


async def test_a_refused_change_emits_nothing(registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM outbox")
    await registry.patch(f"/api/v1/posyandu/{uuid.uuid4()}", json={"name": "Tidak Ada"}, headers=tokens.admin())
    await registry.post("/api/v1/agencies", json={"name": "x"}, headers=tokens.admin())
    assert await registry_db.fetchval("SELECT count(*) FROM outbox") == before


def test_checked_in_asyncapi_document_matches_the_catalogue() -> None:
    checked_in = json.loads((Path(__file__).parents[1] / "asyncapi.json").read_text())
    assert checked_in == json.loads(json.dumps(asyncapi())), "run `make asyncapi` and commit the result"
    channel = checked_in["channels"]["posyandu_registry_v1"]
    assert channel["address"] == TOPIC and "posyandu_registered_v1" in channel["messages"]


async def test_the_service_serves_its_asyncapi_document(registry: httpx.AsyncClient) -> None:
    served = (await registry.get("/asyncapi.json")).json()
    assert served == json.loads(json.dumps(asyncapi()))


async def test_republish_announces_the_current_state_again(registry: httpx.AsyncClient, stack: Stack,
                                                           registry_db: asyncpg.Connection) -> None:
    posyandu = await create_posyandu(registry)
    await registry.post(f"/api/v1/posyandu/{posyandu['id']}/deactivate", headers=tokens.admin())
    assert (await registry.post("/api/v1/registry/republish", headers=tokens.pembina("31"))).status_code == 403
    report = (await registry.post("/api/v1/registry/republish", headers=tokens.admin())).json()
    assert report["regions"] == await registry_db.fetchval("SELECT count(*) FROM regions")
    assert report["posyandu"] == await registry_db.fetchval("SELECT count(*) FROM posyandu")
    received = await read_topic(stack.broker.bootstrap_servers, TOPIC, timeout=60,
                                until=lambda rs: len(events_about(rs, posyandu["id"])) >= 3)
    # Registered, deactivated, then the republished current state: deactivated, at the same version.
    assert [(e.type, e.data["version"]) for e in events_about(received, posyandu["id"])] == [
        ("posyandu.posyandu.registered.v1", 1), ("posyandu.posyandu.deactivated.v1", 2),
        ("posyandu.posyandu.deactivated.v1", 2)]
