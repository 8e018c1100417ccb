"""Two clients of the assigned agency act on one referral at the same moment, over real HTTP against the referral
service as a subprocess: exactly one wins, the other gets 409 (illegal after the winner) or 412 (stale If-Match)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import httpx

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker
from shared.concurrency import etag
from tests.faults.conftest import VILLAGE, ServiceProcess, seed_registry, unique
from tests.support import tokens
from tests.support.streams import Stream, publish
from tests.support.waiting import eventually

ROUNDS = 8
CATEGORY = "pekerjaan-umum.sanitation"


async def test_concurrent_actions_on_one_referral_have_exactly_one_winner(
        stack: Stack, broker: EmbeddedBroker, services: Callable[..., ServiceProcess]) -> None:
    dsn = await stack.migrated_database("referral", unique("referral_race"))
    places = await seed_registry(broker.bootstrap_servers)
    referral = services("referral", dsn, broker.bootstrap_servers, SLA_SWEEP_INTERVAL_SECONDS="3600")
    await referral.start()
    agency = places.agencies["pekerjaan-umum"]
    stream = Stream(datetime.now(UTC))
    for _ in range(2 * ROUNDS):
        stream.need(uuid.uuid4(), VILLAGE, CATEGORY, detected=datetime.now(UTC))
    db = await asyncpg.connect(dsn)
    try:
        async def agency_known() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM known_agencies WHERE id = $1", agency))

        await eventually(agency_known, "the referral service to learn the agency", timeout=60)
        await publish(broker.bootstrap_servers, stream.events)

        async def all_routed() -> list[asyncpg.Record] | None:
            rows = await db.fetch("SELECT id, version FROM referrals WHERE agency_id = $1 AND status = 'requested' "
                                  "ORDER BY created_at, id", agency)
            return rows if len(rows) == 2 * ROUNDS else None

        rows = await eventually(all_routed, "the referrals of the needs", timeout=60)
        opd = tokens.opd(agency, ["pekerjaan-umum"])
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=referral.url, timeout=30, limits=limits) as first, \
                httpx.AsyncClient(base_url=referral.url, timeout=30, limits=limits) as second:

            async def act(client: httpx.AsyncClient, referral_id: uuid.UUID, action: str,
                          **headers: str) -> httpx.Response:
                body = {"reason": "Bukan wewenang kami"} if action == "reject" else None
                return await client.post(f"/api/v1/referrals/{referral_id}/{action}", json=body,
                                         headers={**opd, **headers})

            # Accept and reject at the same moment, without If-Match: the row lock orders them; the second is illegal.
            for row in rows[:ROUNDS]:
                accept, reject = await asyncio.gather(act(first, row["id"], "accept"),
                                                      act(second, row["id"], "reject"))
                assert sorted([accept.status_code, reject.status_code]) == [200, 409], (accept.text, reject.text)
                loser = accept if accept.status_code == 409 else reject
                assert loser.headers["content-type"].startswith("application/problem+json")
                winner_status = "accepted" if accept.status_code == 200 else "rejected"
                assert await db.fetchval("SELECT status FROM referrals WHERE id = $1", row["id"]) == winner_status

            # Two legal actions with the same If-Match: the first to commit moves the version; the other is 412.
            for row in rows[ROUNDS:]:
                tag = etag(row["version"])
                receive, accept = await asyncio.gather(act(first, row["id"], "receive", **{"If-Match": tag}),
                                                       act(second, row["id"], "accept", **{"If-Match": tag}))
                assert sorted([receive.status_code, accept.status_code]) == [200, 412], (receive.text, accept.text)
                loser = receive if receive.status_code == 412 else accept
                assert loser.headers["content-type"].startswith("application/problem+json")
                assert loser.json()["current_etag"] == etag(row["version"] + 1)
                winner_status = "received" if receive.status_code == 200 else "accepted"
                assert await db.fetchval("SELECT status FROM referrals WHERE id = $1", row["id"]) == winner_status

        # Exactly one transition and one status event per referral besides its creation: the loser wrote nothing.
        for row in rows:
            assert await db.fetchval("SELECT count(*) FROM referral_transitions WHERE referral_id = $1",
                                     row["id"]) == 2
            assert await db.fetchval("SELECT version FROM referrals WHERE id = $1", row["id"]) == row["version"] + 1
            assert await db.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND event_type = "
                                     "'posyandu.referral.status-changed.v1'", str(row["id"])) == 1
    finally:
        await db.close()
