"""The registry's rules read "now" and "today" from the service's clock (settings.clock), never the system's: the
times a change stamps, the months a schedule event announces, the time a region import reports."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.registry.settings import RegistrySettings
from services.registry.tests.riau import RIAU_REGIONS, posyandu_body, riau, riau_agency
from tests.support import tokens
from tests.support.clock import set_clock

#: Far from the real date, so that a system-clock reading cannot pass for it.
AT = datetime(2033, 8, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock(registry_settings: RegistrySettings) -> Iterator[list[datetime]]:
    """The registry's clock set to AT; move it by changing the list's item."""
    with set_clock(registry_settings, AT) as now:
        yield now


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_changes_are_stamped_by_the_service_clock(registry: httpx.AsyncClient, registry_db: asyncpg.Connection,
                                                        clock: list[datetime]) -> None:
    await riau(registry)
    created = await registry.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
    assert created.status_code == 201, created.text
    assert _at(created.json()["created_at"]) == _at(created.json()["updated_at"]) == AT
    clock[0] = AT + timedelta(days=1)
    url = f"/api/v1/posyandu/{created.json()['id']}"
    renamed = await registry.patch(url, json={"name": "Posyandu Anggrek"}, headers=tokens.admin())
    assert _at(renamed.json()["updated_at"]) == AT + timedelta(days=1)
    cadre = await registry.post(f"{url}/cadres", json={"name": "Rina", "duties": ["kesehatan"]},
                                headers=tokens.admin())
    cadre_id = uuid.UUID(cadre.json()["id"])
    stamps = "SELECT created_at, updated_at FROM cadres WHERE id = $1"
    assert tuple(await registry_db.fetchrow(stamps, cadre_id)) == (AT + timedelta(days=1), AT + timedelta(days=1))
    clock[0] = AT + timedelta(days=2)
    changed = await registry.patch(f"{url}/cadres/{cadre_id}", json={"phone": "+62 812 0000 1111"},
                                   headers=tokens.admin())
    assert changed.status_code == 200, changed.text
    assert (await registry_db.fetchrow(stamps, cadre_id))["updated_at"] == AT + timedelta(days=2)
    clock[0] = AT + timedelta(days=3)
    ended = await registry.delete(f"{url}/cadres/{cadre_id}", headers=tokens.admin())
    assert ended.status_code == 200, ended.text
    assert (await registry_db.fetchrow(stamps, cadre_id))["updated_at"] == AT + timedelta(days=3)
    deactivated = await registry.post(f"{url}/deactivate", headers=tokens.admin())
    assert _at(deactivated.json()["updated_at"]) == AT + timedelta(days=3)

    agency = await riau_agency(registry)
    assert _at(agency["created_at"]) == AT + timedelta(days=3)
    clock[0] = AT + timedelta(days=4)
    agency_url = f"/api/v1/agencies/{agency['id']}"
    updated = await registry.patch(agency_url, json={"address": "Jl. Uji 2"}, headers=tokens.admin())
    assert _at(updated.json()["updated_at"]) == AT + timedelta(days=4)
    ended_agency = await registry.post(f"{agency_url}/deactivate", headers=tokens.admin())
    assert _at(ended_agency.json()["updated_at"]) == AT + timedelta(days=4)


async def test_a_schedule_event_announces_the_months_from_the_clocks_today(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection, clock: list[datetime]) -> None:
    await riau(registry)
    created = await registry.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
    posyandu = created.json()["id"]
    written = await registry.put(f"/api/v1/posyandu/{posyandu}/schedule",
                                 json={"rule": {"ordinal": "second", "weekday": "wednesday"}}, headers=tokens.admin())
    assert written.status_code == 200, written.text
    assert _at(written.json()["updated_at"]) == AT
    row = await registry_db.fetchrow("SELECT payload FROM outbox WHERE event_type = $1 AND key = $2",
                                     "posyandu.schedule.changed.v1", posyandu)
    data = json.loads(row["payload"])["data"]
    assert (data["opening_days_from"], data["opening_days_to"]) == ("2033-08-01", "2034-07-31")
    assert data["opening_days"][0] == "2033-08-10"  # the second Wednesday of the clock's month


async def test_a_region_import_is_stamped_by_the_service_clock(registry: httpx.AsyncClient,
                                                               registry_db: asyncpg.Connection,
                                                               clock: list[datetime]) -> None:
    await riau(registry)
    code = f"14.02.01.{5000 + uuid.uuid4().int % 4000}"
    imported = await registry.post("/api/v1/regions/import", content=RIAU_REGIONS + f"{code},Desa Jam\n",
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    assert _at(imported.json()["finished_at"]) == AT
    stamped = await registry_db.fetchval("SELECT updated_at FROM regions WHERE code = $1", code.replace(".", ""))
    assert stamped == AT
