"""Reporting test helpers: waiting until the reporting consumer has applied a crafted stream
(tests/support/streams.py builds and publishes it)."""

from __future__ import annotations

import asyncpg

from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from tests.support.factories import known_posyandu  # noqa: F401  (the dashboard's posyandu)
from tests.support.streams import (  # noqa: F401  (the reporting tests take every factory from here)
    Stream,
    at,
    previous_month,
    publish,
    years_before,
)
from tests.support.waiting import eventually


async def until_consumed(database_url: str, events: list[tuple[EventType, CloudEvent]], timeout: float = 90) -> None:
    """Wait until the reporting consumer has applied every one of these events (its inbox holds their ids)."""
    ids = list({event.id for _, event in events})
    conn = await asyncpg.connect(database_url)
    try:
        async def done() -> bool:
            found = await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = 'reporting' "
                                        "AND event_id = ANY($1::uuid[])", ids)
            return bool(found == len(ids))

        await eventually(done, "the reporting service to consume the stream", timeout)
    finally:
        await conn.close()
