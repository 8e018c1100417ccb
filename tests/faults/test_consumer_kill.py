"""A consumer killed with SIGKILL in the middle of a batch, then restarted, ends exactly where it would have:
one referral per detected need, each created once (one transition, one event), none lost."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker
from shared.events.topics import HOUSEHOLD_TOPIC, REGISTRY_TOPIC
from tests.faults.conftest import VILLAGE, ServiceProcess, consumer_caught_up, seed_registry, unique
from tests.support.streams import Stream, publish
from tests.support.waiting import eventually

NEEDS = 600
CATEGORY = "pekerjaan-umum.sanitation"


async def test_a_consumer_killed_mid_batch_and_restarted_applies_every_event_exactly_once(
        stack: Stack, broker: EmbeddedBroker, services: Callable[..., ServiceProcess]) -> None:
    dsn = await stack.migrated_database("referral", unique("referral_kill"))
    places = await seed_registry(broker.bootstrap_servers)
    referral = services("referral", dsn, broker.bootstrap_servers, SLA_SWEEP_INTERVAL_SECONDS="3600")
    await referral.start()
    db = await asyncpg.connect(dsn)
    try:
        agency = places.agencies["pekerjaan-umum"]

        async def agency_known() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM known_agencies WHERE id = $1", agency))

        await eventually(agency_known, "the referral service to learn the agency", timeout=60)

        stream = Stream(datetime.now(UTC))
        for _ in range(NEEDS):
            stream.need(uuid.uuid4(), VILLAGE, CATEGORY, detected=datetime.now(UTC))
        need_ids = {uuid.UUID(str(event.data["need_id"])) for _, event in stream.events}
        assert len(need_ids) == NEEDS
        await publish(broker.bootstrap_servers, stream.events)

        async def some_applied() -> int | None:
            count = int(await db.fetchval("SELECT count(*) FROM referrals"))
            return count if count >= 20 else None

        at_kill = await eventually(some_applied, "the first referrals", timeout=60, interval=0.01)
        referral.kill()
        killed_with = int(await db.fetchval("SELECT count(*) FROM referrals"))
        assert at_kill <= killed_with < NEEDS, f"the batch was done before the kill ({killed_with}); raise NEEDS"

        await referral.start()

        async def all_applied() -> bool:
            return int(await db.fetchval("SELECT count(*) FROM referrals")) >= NEEDS

        await eventually(all_applied, "every need to become a referral", timeout=90)

        async def caught_up() -> bool:
            return await consumer_caught_up(broker.bootstrap_servers, "referral", [REGISTRY_TOPIC, HOUSEHOLD_TOPIC])

        await eventually(caught_up, "the referral consumer to commit every offset", timeout=60, interval=0.2)

        rows = await db.fetch("SELECT id, need_id, category, status, agency_id, origin FROM referrals")
        assert len(rows) == NEEDS
        assert {r["need_id"] for r in rows} == need_ids
        assert {(r["category"], r["status"], r["agency_id"], r["origin"]) for r in rows} == {
            (CATEGORY, "requested", agency, "need")}
        # The side effects of creating a referral happened once per referral, not once per delivery.
        transitions = await db.fetch("SELECT referral_id, count(*) AS n FROM referral_transitions GROUP BY referral_id")
        assert len(transitions) == NEEDS and {t["n"] for t in transitions} == {1}
        events = await db.fetch("SELECT key, count(*) AS n FROM outbox WHERE event_type = "
                                "'posyandu.referral.created.v1' GROUP BY key")
        assert len(events) == NEEDS and {e["n"] for e in events} == {1}
        assert await db.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = 'referral' "
                                 "AND event_type = 'posyandu.household.need-detected.v1'") == NEEDS
    finally:
        await db.close()
