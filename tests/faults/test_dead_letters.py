"""Dead letters end to end: poison events reach the household's consumer (a database rule refuses two regencies, one
event's data is invalid, one record is not an event), the admin API lists and inspects them, a replay before the
fix fails again, the cause is fixed, a replay applies the event exactly once (twice: still once), a filtered replay
takes the rest, what cannot be fixed is discarded with a reason; the depth gauge follows; the CLI does the same."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Stack, service_settings
from deploy.local.embedded import EmbeddedBroker
from services.household.app import create_app as create_household_app
from services.household.settings import HouseholdSettings
from services.referral.app import create_app as create_referral_app
from services.registry.app import create_app as create_registry_app
from services.reporting.app import create_app as create_reporting_app
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC, dead_letter_topic
from tests.faults.conftest import unique
from tests.support import tokens
from tests.support.kafka import read_topic
from tests.support.streams import Stream
from tests.support.waiting import eventually

BASE = "/api/v1/dead-letters"
#: The reserved regencies of this test: a check constraint stands for the bug that makes their handler fail.
REFUSED = ("6171", "6172")
#: A value in the invalid event's data that must not show in any listed error.
SECRET = "NIK3171012345678901"


def region_event(code: str, level: str, parent: str | None) -> CloudEvent:
    stream = Stream(datetime.now(UTC))
    stream.region(code, f"Region {code}", level, parent)
    return stream.events[0][1]


async def test_poison_listed_replayed_once_after_the_fix_and_discarded(stack: Stack, broker: EmbeddedBroker) -> None:
    dsn = await stack.migrated_database("household", unique("household_dlq"))
    settings = HouseholdSettings(**{**service_settings(stack, dsn), "kafka_bootstrap_servers": broker.bootstrap_servers,
                                    "consumer_max_attempts": 2})
    db = await asyncpg.connect(dsn)
    await db.execute("ALTER TABLE known_regions ADD CONSTRAINT dlq_test_refused CHECK (code NOT IN ('6171', '6172'))")
    province = region_event("61", "province", None)
    refused = [region_event(code, "regency", "61") for code in REFUSED]
    invalid = CloudEvent(source="/posyandu/registry", type=reg.REGION_REGISTERED.name, subject="6171",
                         data={"code": "6171", "name": "x", "level": SECRET, "parent_code": "61",
                               "list_version": "test"})
    malformed = b"\x00{not an event"
    started = datetime.now(UTC) - timedelta(seconds=5)

    app = create_household_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://household") as hh:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
            await producer.start()
            try:
                for event in (province, *refused, invalid):
                    await producer.send_and_wait(REGISTRY_TOPIC, event.to_bytes(), key=b"one-partition",
                                                 headers=event.kafka_headers())
                await producer.send_and_wait(REGISTRY_TOPIC, malformed, key=b"one-partition")
            finally:
                await producer.stop()

            async def listed() -> list[dict[str, Any]] | None:
                response = await hh.get(BASE, headers=tokens.admin())
                assert response.status_code == 200, response.text
                items: list[dict[str, Any]] = response.json()["items"]
                return items if len(items) == 4 else None

            items = await eventually(listed, "the four poison records in the dead-letter API", timeout=90)
            assert await db.fetchval("SELECT count(*) FROM known_regions WHERE code = '61'") == 1
            by_event = {item["event_id"]: item for item in items}
            assert set(by_event) == {str(refused[0].id), str(refused[1].id), str(invalid.id), None}
            for item in items:
                assert item["consumer_group"] == "household" and item["topic"] == REGISTRY_TOPIC
                assert item["state"] == "pending" and item["replay_attempts"] == 0
                assert "payload" not in item and "event" not in item
            ids = {code: by_event[str(event.id)]["id"] for code, event in zip(REFUSED, refused, strict=True)}
            invalid_id, malformed_id = by_event[str(invalid.id)]["id"], by_event[None]["id"]
            assert by_event[str(refused[0].id)]["event_type"] == reg.REGION_REGISTERED.name
            assert "dlq_test_refused" in by_event[str(refused[0].id)]["error"]
            assert by_event[str(invalid.id)]["error"].startswith("ValidationError: level:")
            assert SECRET not in by_event[str(invalid.id)]["error"]
            assert by_event[None]["error"].startswith("malformed event") and by_event[None]["event_type"] is None
            offsets = sorted(item["kafka_offset"] for item in items)
            assert offsets == sorted(set(offsets)) and len(offsets) == 4

            # The topic stays the contract: the same four records are there, with their headers.
            parked = await read_topic(broker.bootstrap_servers, dead_letter_topic("household"), timeout=30,
                                      until=lambda rs: len(rs) >= 4)
            assert {r.headers["dlq_offset"].decode() for r in parked} == {str(o) for o in offsets}
            assert all(r.headers["dlq_error"] and SECRET.encode() not in r.headers["dlq_error"] for r in parked)

            # Pages and filters.
            first = (await hh.get(BASE, params={"limit": 3}, headers=tokens.admin())).json()
            assert len(first["items"]) == 3 and first["next_cursor"]
            rest = (await hh.get(BASE, params={"limit": 3, "cursor": first["next_cursor"]},
                                 headers=tokens.admin())).json()
            assert [i["id"] for i in first["items"] + rest["items"]] == sorted(by_id(items), reverse=True)
            assert rest["next_cursor"] is None

            async def count(**params: Any) -> int:
                response = await hh.get(BASE, params=params, headers=tokens.admin())
                assert response.status_code == 200, response.text
                return len(response.json()["items"])

            assert await count(event_type=reg.REGION_REGISTERED.name) == 3
            assert await count(error="CHECK CONSTRAINT") == 2
            assert await count(error="%") == 0  # a literal substring, not a pattern
            assert await count(group="household", state="pending", since=started.isoformat()) == 4
            assert await count(until=started.isoformat()) == 0
            assert await count(state="discarded") == 0

            # Bad filters and inputs: 422 naming the problem (or 400 for a cursor not ours); non-admins 403/401.
            for params in ({"state": "lost"}, {"group": "referral"}, {"since": "yesterday"},
                           {"since": "2026-12-01T00:00:00"}, {"limit": 0}, {"error": ""},
                           {"since": "0001-01-01T00:00:00+14:00"}, {"until": "9999-12-31T23:59:59-12:00"},
                           {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}):
                response = await hh.get(BASE, params=params, headers=tokens.admin())
                assert response.status_code == 422, (params, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
            assert (await hh.get(BASE, params={"cursor": "bm90LW91cnM"}, headers=tokens.admin())).status_code == 400
            assert (await hh.get(f"{BASE}/0", headers=tokens.admin())).status_code == 422
            assert (await hh.get(f"{BASE}/{2**62}", headers=tokens.admin())).status_code == 404
            for body in ({"group": "nobody"}, {"limit": 501}, {"since": "0001-01-01T00:00:00+14:00"},
                         {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, {"surprise": 1}):
                response = await hh.post(f"{BASE}/replay", json=body, headers=tokens.admin())
                assert response.status_code == 422, (body, response.text)
            for reason in ("", "x" * 501):
                response = await hh.post(f"{BASE}/{malformed_id}/discard", json={"reason": reason},
                                         headers=tokens.admin())
                assert response.status_code == 422, response.text
            kader = tokens.kader([uuid.uuid4()])
            calls: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
                ("GET", BASE, None), ("GET", f"{BASE}/{ids['6171']}", None),
                ("POST", f"{BASE}/{ids['6171']}/replay", None), ("POST", f"{BASE}/replay", {}),
                ("POST", f"{BASE}/{malformed_id}/discard", {"reason": "not mine"}))
            for method, path, call_body in calls:
                assert (await hh.request(method, path, json=call_body, headers=kader)).status_code == 403
                assert (await hh.request(method, path, json=call_body)).status_code == 401
            assert await count(state="pending") == 4  # nothing above changed anything

            # Inspect one: the body, and an audit row for the read.
            detail = (await hh.get(f"{BASE}/{ids['6171']}", headers=tokens.admin())).json()
            assert detail["event"]["id"] == str(refused[0].id) and detail["event"]["data"]["code"] == "6171"
            raw = (await hh.get(f"{BASE}/{malformed_id}", headers=tokens.admin())).json()
            assert raw["event"] is None and raw["raw"].endswith("{not an event")
            audited = await db.fetch("SELECT actor_role, action, fields FROM audit_log WHERE resource_type = "
                                     "'dead_letter' AND resource_id = $1", str(ids["6171"]))
            assert [(r["actor_role"], r["action"]) for r in audited] == [("admin", "read")]

            # A replay before the fix fails again: still pending, attempt counted, nothing applied.
            replayed = await hh.post(f"{BASE}/{ids['6171']}/replay", headers=tokens.admin())
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["outcome"] == "failed" and "dlq_test_refused" in replayed.json()["error"]
            assert await applied_count(db, refused[0].id) == 0

            # The fix; then the replay applies it once, and a second replay changes nothing.
            await db.execute("ALTER TABLE known_regions DROP CONSTRAINT dlq_test_refused")
            for expected in ("applied", "duplicate"):
                replayed = await hh.post(f"{BASE}/{ids['6171']}/replay", headers=tokens.admin())
                assert replayed.status_code == 200, replayed.text
                assert replayed.json() == {"id": ids["6171"], "outcome": expected, "error": None}
                assert await applied_count(db, refused[0].id) == 1
                assert await db.fetchval("SELECT count(*) FROM known_regions WHERE code = '6171'") == 1
            row = (await hh.get(f"{BASE}/{ids['6171']}", headers=tokens.admin())).json()
            assert row["state"] == "replayed" and row["replay_outcome"] == "duplicate" and row["replay_attempts"] == 3

            # A filtered replay takes the pending region events: 6172 applies, the invalid one fails again.
            report = await hh.post(f"{BASE}/replay", json={"group": "household", "since": started.isoformat(),
                                                           "event_type": reg.REGION_REGISTERED.name},
                                   headers=tokens.admin())
            assert report.status_code == 200, report.text
            assert {(i["id"], i["outcome"]) for i in report.json()["items"]} == {(ids["6172"], "applied"),
                                                                              (invalid_id, "failed")}
            assert report.json()["counts"] == {"applied": 1, "duplicate": 0, "ignored": 0, "failed": 1}
            assert await applied_count(db, refused[1].id) == 1
            again = await hh.post(f"{BASE}/replay", json={"error": "dlq_test_refused"}, headers=tokens.admin())
            assert again.json()["items"] == []  # replayed ones are no longer pending

            # What cannot be fixed is discarded with a reason: kept, listed as discarded, audited; then final.
            assert (await hh.post(f"{BASE}/{malformed_id}/replay", headers=tokens.admin())).status_code == 409
            reason = "bytes of an old test producer; nothing to recover"
            discarded = await hh.post(f"{BASE}/{malformed_id}/discard", json={"reason": reason},
                                      headers=tokens.admin())
            assert discarded.status_code == 200, discarded.text
            assert discarded.json()["state"] == "discarded" and discarded.json()["discard_reason"] == reason
            assert discarded.json()["discarded_by"] == "admin-test"
            assert (await hh.post(f"{BASE}/{malformed_id}/discard", json={"reason": reason},
                                  headers=tokens.admin())).status_code == 409
            assert (await hh.post(f"{BASE}/{malformed_id}/replay", headers=tokens.admin())).status_code == 409
            assert (await hh.post(f"{BASE}/{ids['6171']}/discard", json={"reason": "too late"},
                                  headers=tokens.admin())).status_code == 409
            assert await count(state="discarded") == 1
            assert await db.fetchval("SELECT purpose FROM audit_log WHERE resource_type = 'dead_letter' AND "
                                     "action = 'discard' AND resource_id = $1", str(malformed_id)) \
                == f"dead-letter discard: {reason}"

            # The depth gauge per group and state (set after each change and recounted every 30 s, so a recount
            # that read the table just before the last change may stand for a moment).
            async def depth() -> bool:
                found = {s.labels["state"]: s.value
                         for family in text_string_to_metric_families((await hh.get("/metrics")).text)
                         if family.name == "consumer_dead_letters" for s in family.samples
                         if s.labels["service"] == "household" and s.labels["group"] == "household"}
                return found == {"pending": 1, "replayed": 2, "discarded": 1}

            await eventually(depth, "the dead-letter depth gauge", timeout=45, interval=0.5)

        # The CLI, against the same database: list, show (audited as the CLI user), replay (harmless), discard.
        def cli(*args: str) -> list[dict[str, Any]]:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": dsn, "ENVIRONMENT": "test",
                   "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "LOG_LEVEL": "WARNING"}
            done = subprocess.run([sys.executable, "-m", "services.household", "dead-letters", *args], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            return [orjson.loads(line) for line in done.stdout.splitlines()]

        listed_pending = await asyncio.to_thread(cli, "list", "--state", "pending")
        assert [row["id"] for row in listed_pending] == [invalid_id]
        shown = await asyncio.to_thread(cli, "show", str(invalid_id))
        assert shown[0]["event"]["data"]["level"] == SECRET
        assert await db.fetchval("SELECT actor FROM audit_log WHERE resource_type = 'dead_letter' AND action = 'read' "
                                 "AND resource_id = $1 AND actor LIKE 'cli:%'", str(invalid_id))
        assert await asyncio.to_thread(cli, "replay", str(ids["6172"])) == [
            {"id": ids["6172"], "outcome": "duplicate", "error": None}]
        assert await applied_count(db, refused[1].id) == 1
        gone = await asyncio.to_thread(cli, "discard", str(invalid_id), "--reason", "level was never valid")
        assert gone[0]["state"] == "discarded"
        assert await asyncio.to_thread(cli, "list", "--state", "pending") == []
    finally:
        await db.close()


def by_id(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


async def applied_count(db: asyncpg.Connection, event_id: uuid.UUID) -> int:
    return int(await db.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = 'household' AND event_id = $1",
                                 event_id))


def test_every_consuming_service_has_the_dead_letter_api_and_the_registry_none() -> None:
    documents = {"household": create_household_app().openapi(), "referral": create_referral_app().openapi(),
                 "reporting": create_reporting_app().openapi(), "registry": create_registry_app().openapi()}
    routes = {f"{BASE}", f"{BASE}/{{dead_letter_id}}", f"{BASE}/{{dead_letter_id}}/replay", f"{BASE}/replay",
              f"{BASE}/{{dead_letter_id}}/discard"}
    for service, document in documents.items():
        present = routes & set(document["paths"])
        assert present == (set() if service == "registry" else routes), service

