"""The one event plumbing (shared/outbox.py, shared/projection.py, shared/versioned.py) against the real database:
events written to the outbox in order, by topic and key, in the caller's transaction whatever the batch size;
projections that hand typed data to their handlers through the inbox; the versioned upsert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.consumer import apply_once
from shared.events import household as hh
from shared.events import referral as ref
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC, REGISTRY_TOPIC, SpmField, referral_topic
from shared.outbox import COPY_FROM, publish, publish_many
from shared.projection import Projection, Received, handlers_of, handles
from shared.versioned import upsert_newer, upsert_newer_many
from tests.support.database import sessions_of

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.fixture
def sessionmaker(registry_session: AsyncSession) -> async_sessionmaker[AsyncSession]:
    """Sessions of the registry's database (its outbox and inbox) in the test's rolled-back transaction
    (tests/support/database.py): each `session.begin()` block below is a savepoint, rolled back with the test."""
    return sessions_of(registry_session)


async def fetch(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in (await session.execute(sa.text(sql), params)).mappings()]


def region(code: str, name: str = "Desa") -> CloudEvent:
    data = reg.RegionData(code=code, name=name, level=reg.RegionLevel.VILLAGE, parent_code=code[:6],
                          kind="desa", list_version="test")
    return reg.REGION_REGISTERED.new(data, subject=code, regioncode=code)


def referral_data(field: SpmField) -> ref.ReferralData:
    return ref.ReferralData(referral_id=uuid.uuid4(), need_id=None, household_id=uuid.uuid4(), member_id=None,
                            posyandu_id=uuid.uuid4(), village_code="1601011001", spm_field=field,
                            category="sosial.elderly-alone", urgency="normal", status="requested", agency_id=None,
                            respond_by=None, complete_by=None, version=1)


def referral(field: SpmField) -> CloudEvent:
    data = referral_data(field)
    return ref.REFERRAL_CREATED.new(data, subject=str(data.referral_id), spmfield=field, regioncode="1601011001")


# --- the outbox --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, COPY_FROM + 50])
async def test_a_batch_is_written_in_order_to_each_types_topic_keyed_by_its_subject(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession, size: int) -> None:
    events = [region(f"1601{n:06d}") for n in range(size)]
    events.insert(1, referral(SpmField.SOSIAL))
    async with sessionmaker() as session, session.begin():
        assert await publish_many(session, events) == size + 1
    rows = await fetch(registry_session, "SELECT event_id, event_type, topic, key, payload FROM outbox "
                       "WHERE event_id = ANY(:ids) ORDER BY id", ids=[event.id for event in events])
    assert [row["event_id"] for row in rows] == [event.id for event in events]
    assert [row["topic"] for row in rows] == [REGISTRY_TOPIC, referral_topic(SpmField.SOSIAL),
                                              *[REGISTRY_TOPIC] * (size - 1)]
    assert [row["key"] for row in rows] == [event.subject for event in events]
    assert [CloudEvent.from_bytes(row["payload"]) for row in rows] == events


async def test_a_batch_of_a_rolled_back_transaction_leaves_nothing(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession) -> None:
    """COPY included: the large batch is written inside the caller's transaction, not beside it."""
    events = [region(f"1602{n:06d}") for n in range(COPY_FROM * 2)]
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            await publish_many(session, events)
            raise RuntimeError("the use case failed after writing its events")
    assert await fetch(registry_session, "SELECT id FROM outbox WHERE event_id = ANY(:ids)",
                       ids=[event.id for event in events]) == []


async def test_one_event_is_the_catalogue_types_envelope(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession) -> None:
    async with sessionmaker() as session, session.begin():
        written = await publish(session, ref.REFERRAL_CREATED, referral_data(SpmField.KESEHATAN), subject="r-1",
                                spmfield=SpmField.KESEHATAN)
        other = reg.RegionData.model_validate(region("1601000001").data)
        with pytest.raises(TypeError):  # data of another type's model
            await publish(session, ref.REFERRAL_CREATED, other, subject="r-2")  # type: ignore[misc]
    assert (written.source, written.type) == ("/posyandu/referral", ref.REFERRAL_CREATED.name)
    [row] = await fetch(registry_session, "SELECT topic, key FROM outbox WHERE event_id = :id", id=written.id)
    assert (row["topic"], row["key"]) == (referral_topic(SpmField.KESEHATAN), "r-1")


# --- projections -------------------------------------------------------------------------------------------------


class Seen(Projection):
    topics = (REGISTRY_TOPIC,)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # configuration through the constructor
        self.regions: list[tuple[str, reg.RegionData]] = []
        self.batches: list[list[Received[reg.PosyanduData]]] = []

    @handles(reg.REGION_REGISTERED, reg.REGION_RENAMED)
    async def on_region(self, session: AsyncSession, event: CloudEvent, data: reg.RegionData) -> None:
        assert session.in_transaction()
        self.regions.append((f"{self.prefix}{event.type}", data))

    @handles(reg.POSYANDU_REGISTERED, batched=True)
    async def on_posyandu(self, session: AsyncSession, events: list[Received[reg.PosyanduData]]) -> None:
        self.batches.append(events)


def posyandu(name: str) -> CloudEvent:
    data = reg.PosyanduData(posyandu_id=uuid.uuid4(), code="P-1", name=name, village_code="1601011001",
                            status=reg.Status.ACTIVE, service_days=[], version=1)
    return reg.POSYANDU_REGISTERED.new(data, subject=str(data.posyandu_id), regioncode="1601011001")


async def test_handlers_receive_the_data_parsed_by_the_catalogue_once_per_event(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    seen = Seen("seen:")
    table = seen.handlers()
    assert set(table) == {reg.REGION_REGISTERED.name, reg.REGION_RENAMED.name, reg.POSYANDU_REGISTERED.name}
    first, one, two = region("1601011001", "Baturaja"), posyandu("Mawar"), posyandu("Melati")
    assert await apply_once(sessionmaker, "plumbing", table, [first, one, two]) == 3
    assert await apply_once(sessionmaker, "plumbing", table, [first, one]) == 0  # the inbox: once per group
    [(label, data)] = seen.regions
    assert label == f"seen:{reg.REGION_REGISTERED.name}"
    assert isinstance(data, reg.RegionData) and (data.code, data.name) == ("1601011001", "Baturaja")
    [batch] = seen.batches
    assert [(r.event.id, r.data.name) for r in batch] == [(one.id, "Mawar"), (two.id, "Melati")]
    assert all(isinstance(r.data, reg.PosyanduData) for r in batch)


async def test_data_that_does_not_fit_its_model_fails_the_event(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession) -> None:
    """(The runner dead-letters a ValidationError at once: tests/faults.)"""
    bad = region("1601011001").model_copy(update={"data": {"code": "1601011001"}})
    with pytest.raises(ValidationError):
        await apply_once(sessionmaker, "plumbing", Seen("").handlers(), [bad])
    assert await fetch(registry_session, "SELECT event_id FROM inbox WHERE event_id = :id", id=bad.id) == []


def test_a_projection_declares_each_event_type_once_and_its_topics() -> None:
    class Twice(Projection):
        topics = (REGISTRY_TOPIC,)

        @handles(reg.REGION_REGISTERED)
        async def one(self, session: AsyncSession, event: CloudEvent, data: reg.RegionData) -> None: ...

        @handles(reg.REGION_REGISTERED)
        async def other(self, session: AsyncSession, event: CloudEvent, data: reg.RegionData) -> None: ...

    class Undeclared(Projection):
        topics = (REGISTRY_TOPIC,)

        @handles(hh.HOUSEHOLD_REGISTERED)
        async def on_household(self, session: AsyncSession, event: CloudEvent, data: hh.HouseholdData) -> None: ...

    with pytest.raises(ValueError, match="twice"):
        Twice().handlers()
    with pytest.raises(ValueError, match=HOUSEHOLD_TOPIC):
        Undeclared().handlers()
    with pytest.raises(ValueError, match="two projections"):
        handlers_of(Seen("a"), Seen("b"))


# --- the versioned upsert ----------------------------------------------------------------------------------------


def _table() -> sa.Table:
    return sa.Table("versioned_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text), sa.Column("version", sa.Integer), sa.Column("created", sa.Text),
                    sa.Column("first_seen_at", sa.DateTime(timezone=True)))


async def _probe_table(session: AsyncSession) -> sa.Table:
    """A table of the test's own, created in its transaction (and so gone with it)."""
    await session.execute(sa.text("CREATE TABLE versioned_probe (id int PRIMARY KEY, name text, version int NOT NULL, "
                                  "created text, first_seen_at timestamptz)"))
    return _table()


async def _rows(session: AsyncSession) -> list[dict[str, Any]]:
    return await fetch(session, "SELECT * FROM versioned_probe ORDER BY id")


async def test_the_newer_version_wins_whatever_the_order(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession) -> None:
    table = await _probe_table(registry_session)

    async def upsert(name: str, version: int, created: str) -> bool:
        async with sessionmaker() as session, session.begin():
            return await upsert_newer(session, table, {"id": 1, "name": name, "version": version, "created": created},
                                      insert_only=("created",))

    assert await upsert("two", 2, "by two")
    assert not await upsert("one", 1, "by one")  # older, late: nothing changes
    assert not await upsert("two again", 2, "again")  # repeated
    assert await upsert("three", 3, "by three")
    assert await _rows(registry_session) == [
        {"id": 1, "name": "three", "version": 3, "created": "by two", "first_seen_at": None}]
    async with sessionmaker() as session, session.begin():  # another expression for the update
        assert await upsert_newer(session, table, {"id": 1, "name": "four", "version": 4, "created": "x"},
                                  update={"name": table.c.name + "+four"})
    assert (await _rows(registry_session))[0]["name"] == "three+four"


async def test_a_batch_keeps_the_newest_version_per_key_and_the_earliest_first_seen(
        sessionmaker: async_sessionmaker[AsyncSession], registry_session: AsyncSession) -> None:
    table = await _probe_table(registry_session)

    def row(ident: int, name: str, version: int, minutes: int) -> dict[str, Any]:
        return {"id": ident, "name": name, "version": version, "first_seen_at": T0 + timedelta(minutes=minutes)}

    async with sessionmaker() as session, session.begin():
        await upsert_newer_many(session, table, [row(1, "b", 2, 5), row(1, "a", 1, 1), row(2, "x", 1, 9)],
                                earliest=("first_seen_at",))
    async with sessionmaker() as session, session.begin():
        # Later: an older version of 1 seen earlier still (its time counts, not its values); a newer one of 2.
        await upsert_newer_many(session, table, [row(1, "old", 1, 0), row(2, "y", 2, 20)],
                                earliest=("first_seen_at",))
    assert [(r["id"], r["name"], r["version"], r["first_seen_at"]) for r in await _rows(registry_session)] == [
        (1, "b", 2, T0), (2, "y", 2, T0 + timedelta(minutes=9))]
