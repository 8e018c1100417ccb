"""Poison on every consumed topic: malformed bytes and a well-formed event with invalid data. Each consuming service
(household, referral, reporting, running together) parks them in posyandu.dlq.<group> with the error, and applies the
valid event that follows them on the same partition."""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker
from services.household.app import create_app as create_household_app
from services.household.settings import HouseholdSettings
from services.referral.app import create_app as create_referral_app
from services.referral.settings import ReferralSettings
from services.reporting.app import create_app as create_reporting_app
from services.reporting.settings import ReportingSettings
from shared.categories import CATEGORIES
from shared.events import household as hh
from shared.events import referral as rf
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC, REGISTRY_TOPIC, SpmField, dead_letter_topic, referral_topic
from tests.faults.conftest import VILLAGE, unique
from tests.support.kafka import Received, read_topic
from tests.support.streams import Stream
from tests.support.waiting import eventually

MALFORMED = b"\x00{not an event"


def invalid(event_type: str, topic: str) -> bytes:
    """A valid envelope whose data the handler's model refuses."""
    return CloudEvent(source="/posyandu/test", type=event_type, subject=f"poison-{topic}",
                      data={"unexpected": True}).to_bytes()


@contextlib.asynccontextmanager
async def running(apps: list[Any]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(LifespanManager(app, startup_timeout=30, shutdown_timeout=30))
        yield


async def test_each_consumer_dead_letters_poison_on_every_topic_and_keeps_going(stack: Stack,
                                                                              broker: EmbeddedBroker) -> None:
    def settings(dsn: str) -> dict[str, Any]:
        return {**service_settings(stack, dsn), "kafka_bootstrap_servers": broker.bootstrap_servers,
                "consumer_max_attempts": 2}

    dsns = {name: await stack.migrated_database(name, unique(f"{name}_poison"))
            for name in ("household", "referral", "reporting")}
    apps = [create_household_app(HouseholdSettings(**settings(dsns["household"]))),
            create_referral_app(ReferralSettings(**settings(dsns["referral"]), sla_sweep_interval_seconds=3600)),
            create_reporting_app(ReportingSettings(**settings(dsns["reporting"])))]

    # Per topic: the poison, then the valid events, all with one key (one partition, so the order is the test).
    stream = Stream(datetime.now(UTC))
    stream.region("31", "DKI Jakarta", "province", None)
    agency = stream.agency("3171", ["kesehatan"])
    household = stream.household(VILLAGE)
    for field in SpmField:
        category = next(c for c in CATEGORIES if c.startswith(f"{field.value}."))
        stream.referral(VILLAGE, category, created=datetime.now(UTC), agency_id=agency, steps=[])
    valid: dict[str, list[CloudEvent]] = defaultdict(list)
    for event_type, event in stream.events:
        valid[event_type.topic_for(event.spmfield)].append(event)
    poison: dict[str, list[bytes]] = {
        REGISTRY_TOPIC: [MALFORMED, invalid(reg.REGION_REGISTERED.name, REGISTRY_TOPIC),
                         invalid(reg.AGENCY_REGISTERED.name, REGISTRY_TOPIC)],
        HOUSEHOLD_TOPIC: [MALFORMED, invalid(hh.HOUSEHOLD_REGISTERED.name, HOUSEHOLD_TOPIC)],
        **{referral_topic(f): [MALFORMED, invalid(rf.REFERRAL_CREATED.name, referral_topic(f))] for f in SpmField}}
    assert set(valid) == set(poison)
    # Which poison each group must park: all malformed records of its topics, and the invalid events it handles.
    # (The household service projects the agencies too: the jurisdictions of the beneficiary-list reports.)
    handled = {"household": {reg.REGION_REGISTERED.name, reg.AGENCY_REGISTERED.name, rf.REFERRAL_CREATED.name},
               "referral": {reg.AGENCY_REGISTERED.name, hh.HOUSEHOLD_REGISTERED.name},
               "reporting": {reg.REGION_REGISTERED.name, reg.AGENCY_REGISTERED.name, hh.HOUSEHOLD_REGISTERED.name,
                             rf.REFERRAL_CREATED.name}}
    topics = {"household": [REGISTRY_TOPIC, *(referral_topic(f) for f in SpmField)],
              "referral": [REGISTRY_TOPIC, HOUSEHOLD_TOPIC], "reporting": list(poison)}
    expected_dead = {group: {(topic, raw) for topic in topics[group] for raw in poison[topic]
                             if raw == MALFORMED or CloudEvent.from_bytes(raw).type in handled[group]}
                     for group in topics}
    expected_applied = {group: {e.id for topic in topics[group] for e in valid[topic] if e.type in handled[group]}
                        for group in topics}
    assert household in {uuid.UUID(str(e.data["household_id"])) for e in valid[HOUSEHOLD_TOPIC]}

    async with running(apps):
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for topic in poison:
                for raw in poison[topic]:
                    await producer.send_and_wait(topic, raw, key=b"one-partition")
                for event in valid[topic]:
                    await producer.send_and_wait(topic, event.to_bytes(), key=b"one-partition",
                                                 headers=event.kafka_headers())
        finally:
            await producer.stop()

        for group, ids in expected_applied.items():
            conn = await asyncpg.connect(dsns[group])
            try:
                async def applied(conn: asyncpg.Connection = conn, ids: set[uuid.UUID] = ids,
                                  group: str = group) -> bool:
                    found = await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = $1 AND "
                                                "event_id = ANY($2::uuid[])", group, list(ids))
                    return bool(found == len(ids))

                await eventually(applied, f"{group} to apply the valid events after the poison", timeout=60)
            finally:
                await conn.close()

        for group, dead in expected_dead.items():
            def enough(rs: list[Received], n: int = len(dead)) -> bool:
                return len(rs) >= n

            parked = await read_topic(broker.bootstrap_servers, dead_letter_topic(group), timeout=30, until=enough)
            got = {(r.headers["dlq_topic"].decode(), r.record.value) for r in parked}
            assert got == dead, group
            assert all(r.headers["dlq_consumer_group"] == group.encode() and r.headers["dlq_error"] for r in parked)
