"""The rolled-back session of service-level tests (tests/support/database.py) isolates: what a test writes, its
own and the code under test's commits included, is seen by that test only and is gone when it ends."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.settings import RegistrySettings
from shared.consumer import apply_once
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.outbox import publish_many
from tests.support.database import rolled_back, sessions_of

GROUP = "rolled-back-probe"
#: The event the first of the two ordered tests writes and commits, and the second looks for.
WRITTEN_IN_THE_FIRST_TEST = uuid.UUID("0d1c0a5e-0000-4000-8000-000000000017")


def region(code: str, event_id: uuid.UUID | None = None) -> CloudEvent:
    data = reg.RegionData(code=code, name="Desa Uji", level=reg.RegionLevel.VILLAGE, parent_code=code[:6],
                          kind="desa", list_version="test")
    event = reg.REGION_REGISTERED.new(data, subject=code, regioncode=code)
    return event if event_id is None else event.model_copy(update={"id": event_id})


async def _seen(reader: AsyncSession | asyncpg.Connection, event_id: uuid.UUID) -> tuple[int, int]:
    """How many outbox rows and inbox rows (of the probe's group) the reader sees for the event."""
    outbox = "SELECT count(*) FROM outbox WHERE event_id = $1"
    inbox = f"SELECT count(*) FROM inbox WHERE consumer_group = '{GROUP}' AND event_id = $1"
    if isinstance(reader, asyncpg.Connection):
        return await reader.fetchval(outbox, event_id), await reader.fetchval(inbox, event_id)
    sql = [sa.text(q.replace("$1", ":id")) for q in (outbox, inbox)]
    return ((await reader.scalar(sql[0], {"id": event_id})) or 0, (await reader.scalar(sql[1], {"id": event_id})) or 0)


async def _applied(session: AsyncSession, event: CloudEvent) -> None:
    """A handler that writes nothing itself: apply_once's inbox row is what the test looks for."""


async def test_commits_in_the_test_stay_in_its_transaction_and_nothing_outlives_it(
        registry_settings: RegistrySettings, registry_db: asyncpg.Connection) -> None:
    event = region("1699011001")
    async with rolled_back(registry_settings) as session:
        await publish_many(session, [event])
        await session.commit()  # the session's own commit
        # A use case that opens and commits a transaction of its own (a consumer batch: inbox row and handler).
        assert await apply_once(sessions_of(session), GROUP, {event.type: _applied}, [event]) == 1
        assert await _seen(session, event.id) == (1, 1)
        # Committed for the test, not for the database: another connection sees nothing.
        assert await _seen(registry_db, event.id) == (0, 0)
        # The inbox row is really there for the test: the same event again is not applied twice.
        assert await apply_once(sessions_of(session), GROUP, {event.type: _applied}, [event]) == 0
    assert await _seen(registry_db, event.id) == (0, 0)  # after the rollback, from a fresh look
    async with rolled_back(registry_settings) as later:
        assert await _seen(later, event.id) == (0, 0)


async def test_a_failed_statement_undoes_only_what_came_after_the_last_commit(
        registry_settings: RegistrySettings) -> None:
    """As in a request: a use case that fails rolls back its own work; what the test wrote before stays."""
    first, second = region("1699011002"), region("1699011003")
    async with rolled_back(registry_settings) as session:
        await publish_many(session, [first])
        await session.commit()
        await publish_many(session, [second])
        with pytest.raises(IntegrityError):  # the same event id twice: the outbox's unique event_id
            await publish_many(session, [first])
        await session.rollback()
        assert (await _seen(session, first.id))[0] == 1
        assert (await _seen(session, second.id))[0] == 0


async def test_a_row_written_and_committed_in_one_test(registry_session: AsyncSession,
                                                       registry_db: asyncpg.Connection) -> None:
    """The first of two ordered tests: the next one must not find this row."""
    assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1",
                                      WRITTEN_IN_THE_FIRST_TEST) == 0
    await publish_many(registry_session, [region("1699011004", WRITTEN_IN_THE_FIRST_TEST)])
    await registry_session.commit()
    assert (await _seen(registry_session, WRITTEN_IN_THE_FIRST_TEST))[0] == 1


async def test_is_gone_in_the_next(registry_session: AsyncSession, registry_db: asyncpg.Connection) -> None:
    assert (await _seen(registry_session, WRITTEN_IN_THE_FIRST_TEST))[0] == 0
    assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1",
                                      WRITTEN_IN_THE_FIRST_TEST) == 0
