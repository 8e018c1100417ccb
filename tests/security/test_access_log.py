"""The household's access log: every service's reads of a family's data in one place (issue 18, item 4).

An agency reads a referral's details in the referral service; the referral service publishes the read on the
internal audit topic and the household service records it beside its own reads, with the actor, the purpose and
the request id the caller sent. Sites in Kota Padang (1371) and Kota Solok (1372), regencies no other test uses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from conftest import Stack
from services.household.settings import HouseholdSettings
from services.referral.settings import ReferralSettings
from shared.auth import Role, mint_token
from shared.events.audit import HOUSEHOLD_READ, HouseholdReadData
from shared.events.topics import AUDIT_TOPIC
from shared.pagination import encode_cursor
from shared.settings import DEV_JWT_SECRET
from tests.support import tokens
from tests.support.waiting import eventually
from tests.support.world import Site, build_site

PADANG = "1371011001"
SOLOK = "1372011001"
REGIONS = ("kode,nama\n13,Sumatera Barat\n13.71,Kota Padang\n13.71.01,Bungus Teluk Kabung\n"
           "13.71.01.1001,Bungus Barat\n13.72,Kota Solok\n13.72.01,Lubuk Sikarah\n13.72.01.1001,Kampung Jawa\n")


@dataclass(frozen=True)
class World:
    padang: Site
    solok: Site


@pytest.fixture(scope="module")
async def world(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                household_settings: HouseholdSettings, referral_settings: ReferralSettings) -> World:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        async def regions_known() -> bool:
            return bool(await household_db.fetchval(
                "SELECT count(*) = 2 FROM known_regions WHERE code = ANY($1::text[])", [PADANG, SOLOK]))

        await eventually(regions_known, "the household service to learn the Padang and Solok villages")
        common: dict[str, Any] = {"registry": registry, "household": household, "referral": referral,
                                  "household_db": household_db, "referral_db": referral_db}
        padang = await build_site(**common, village_code=PADANG, spm_field="kesehatan",
                                  category="kesehatan.tb-suspect")
        solok = await build_site(**common, village_code=SOLOK, spm_field="sosial", category="sosial.neglected-elderly")
    finally:
        await household_db.close()
        await referral_db.close()
    return World(padang, solok)


def log_url(site: Site) -> str:
    return f"/api/v1/households/{site.household_id}/access-log"


async def entries(household: httpx.AsyncClient, site: Site, **params: Any) -> list[dict[str, Any]]:
    response = await household.get(log_url(site), params=params, headers=site.kader())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def until_logged(household: httpx.AsyncClient, site: Site, request_id: str,
                       service: str = "referral") -> dict[str, Any]:
    """The entry of a read in another service, once the household service has consumed it."""
    async def logged() -> dict[str, Any] | None:
        return next((e for e in await entries(household, site, limit=500)
                     if e["request_id"] == request_id and e["service"] == service), None)

    return await eventually(logged, f"the read {request_id} in the access log")


async def test_an_agencys_read_of_a_referral_shows_in_the_households_access_log(
        world: World, household: httpx.AsyncClient, referral: httpx.AsyncClient) -> None:
    site = world.padang
    request_id = f"akses-{uuid.uuid4().hex[:12]}"
    read = await referral.get(f"/api/v1/referrals/{site.referral_id}",
                              headers={**site.opd(), "X-Request-ID": request_id})
    assert read.status_code == 200, read.text
    assert read.json()["member_details"]["nik"] == site.household["members"][0]["nik"]

    entry = await until_logged(household, site, request_id)
    assert entry["actor"] == f"opd-{site.agency_id}" and entry["actor_role"] == "opd"
    assert entry["actor_agency_id"] == site.agency_id and entry["actor_agency_name"].startswith("Dinas Rujukan")
    assert entry["purpose"] == "assigned agency acting on the referral"
    assert entry["action"] == "read" and entry["resource_type"] == "referral"
    assert entry["resource_id"] == site.referral_id
    assert {"reason", "evidence", "member_details"} <= set(entry["fields"])
    # The NIK the referral service fetched from the household service is that service's own read, under the same id.
    own = [e for e in await entries(household, site, limit=500) if e["request_id"] == request_id]
    assert {e["service"] for e in own} == {"referral", "household"}
    nik_read = next(e for e in own if e["service"] == "household")
    assert nik_read["actor"] == entry["actor"] and "nik" in nik_read["fields"]
    assert nik_read["actor_agency_id"] is None and nik_read["actor_posyandu_ids"] == []


async def test_every_referral_read_of_the_family_reaches_the_log(
        world: World, household: httpx.AsyncClient, referral: httpx.AsyncClient) -> None:
    site = world.padang
    reads = {"referral.history": (f"/api/v1/referrals/{site.referral_id}/history", site.opd()),
             "referral.notes": (f"/api/v1/referrals/{site.referral_id}/notes", site.kader()),
             "referral": (f"/api/v1/referrals?posyandu={site.posyandu_id}", site.kader())}
    for resource_type, (path, headers) in reads.items():
        request_id = f"akses-{uuid.uuid4().hex[:12]}"
        response = await referral.get(path, headers={**headers, "X-Request-ID": request_id})
        assert response.status_code == 200, response.text
        entry = await until_logged(household, site, request_id)
        assert entry["resource_type"] == resource_type, entry
        if entry["actor_role"] == "kader":
            assert entry["actor_posyandu_ids"] == [site.posyandu_id]


def _read_event(site: Site, *, actor: str, purpose: str, at: datetime) -> Any:
    data = HouseholdReadData(household_id=uuid.UUID(site.household_id), read_at=at, actor=actor, actor_role="opd",
                             actor_agency_id=uuid.UUID(site.agency_id), actor_agency_name="Dinas <b>Uji</b>",
                             resource_type="referral", resource_id=site.referral_id, fields=["evidence"],
                             purpose=purpose, request_id=f"akses-{uuid.uuid4().hex[:12]}")
    return HOUSEHOLD_READ.new(data, subject=site.household_id, regioncode=site.village_code)


async def test_a_redelivered_access_event_is_recorded_once(
        world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection, stack: Stack) -> None:
    site = world.solok
    event = _read_event(site, actor="opd-redelivered", purpose="checking the evidence", at=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(AUDIT_TOPIC, event.to_bytes(), key=site.household_id.encode())
    finally:
        await producer.stop()
    request_id = event.data["request_id"]
    await until_logged(household, site, request_id)

    async def all_handled() -> bool:
        # The inbox knows the event once, however often it came; give the later copies time to arrive.
        return bool(await household_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event.id))

    await eventually(all_handled, "the event in the inbox")
    # A later event on the same partition is applied only after the copies before it.
    marker = _read_event(site, actor="opd-marker", purpose="after the copies", at=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(AUDIT_TOPIC, marker.to_bytes(), key=site.household_id.encode())
    finally:
        await producer.stop()
    await until_logged(household, site, marker.data["request_id"])
    logged = [e for e in await entries(household, site, limit=500) if e["request_id"] == request_id]
    assert len(logged) == 1
    assert await household_db.fetchval("SELECT count(*) FROM access_log_origins WHERE event_id = $1", event.id) == 1


async def test_the_log_pages_newest_first_and_filters_by_time(
        world: World, household: httpx.AsyncClient, referral: httpx.AsyncClient) -> None:
    site = world.padang
    for _ in range(3):
        assert (await referral.get(f"/api/v1/referrals/{site.referral_id}/history",
                                   headers=site.opd())).status_code == 200
    everything = await entries(household, site, limit=500)
    assert len(everything) >= 5
    times = [datetime.fromisoformat(e["at"]) for e in everything]
    assert times == sorted(times, reverse=True)

    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await household.get(log_url(site), params=params, headers=site.kader())).json()
        assert len(page["items"]) <= 2
        paged += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    # Each page's own read is logged as it is made, but only ever above the cursor: the pages miss nothing, repeat
    # nothing, and are newest first.
    ids = [e["id"] for e in paged]
    assert len(ids) == len(set(ids))
    assert {e["id"] for e in everything} <= set(ids)
    assert [datetime.fromisoformat(e["at"]) for e in paged] == sorted(
        (datetime.fromisoformat(e["at"]) for e in paged), reverse=True)

    middle = times[len(times) // 2]
    older = await entries(household, site, limit=500, to=middle.isoformat())
    newer = await entries(household, site, limit=500, **{"from": middle.isoformat()})
    assert older and newer
    assert all(datetime.fromisoformat(e["at"]) < middle for e in older)
    assert all(datetime.fromisoformat(e["at"]) >= middle for e in newer)


async def test_reading_the_log_is_itself_audited(world: World, household: httpx.AsyncClient) -> None:
    site = world.solok
    await entries(household, site)
    latest = (await entries(household, site, limit=1))[0]
    assert latest["resource_type"] == "household.access-log" and latest["service"] == "household"
    assert latest["actor_role"] == "kader"


async def test_only_the_admin_and_the_households_kader_read_the_log(
        world: World, household: httpx.AsyncClient) -> None:
    site, other = world.padang, world.solok
    for path in (log_url(site), f"{log_url(site)}/report"):
        assert (await household.get(path, headers=site.kader())).status_code == 200
        assert (await household.get(path, headers=tokens.admin())).status_code == 200
        # Who may not read the household gets its 404 (existence does not leak); who may read the household but not
        # its log (the agency holding its referral, the region's pembina) a 403.
        for outsider, status in ((other.kader(), 404), (other.opd(), 404), (tokens.pembina("1372"), 404),
                                 (site.opd(), 403), (tokens.pembina("1371"), 403), (tokens.pembina("13"), 403)):
            refused = await household.get(path, headers=outsider)
            assert refused.status_code == status, (path, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await household.get(path)).status_code == 401


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 501}, {"limit": "x"}, {"from": "yesterday"}, {"to": "2026-12-01T10:00:00"},
    {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, {"from": "2026-12-01T00:00:00Z",
                                                                      "to": "2026-12-01T00:00:00Z"},
    {"from": "0001-01-01T00:00:00+14:00"}, {"to": "9999-12-31T23:59:59-12:00"}, {"from": "1899-12-31T23:59:59Z"},
])
async def test_bad_query_parameters_are_refused(world: World, household: httpx.AsyncClient,
                                                params: dict[str, Any]) -> None:
    site = world.padang
    for path in (log_url(site), f"{log_url(site)}/report"):
        if path.endswith("report") and "limit" in params:
            continue
        response = await household.get(path, params=params, headers=site.kader())
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["errors"], response.text


@pytest.mark.parametrize("values", [["not", "ours"], ["2026-12-01T00:00:00+00:00", "1"], ["2026-12-01T00:00:00", 1],
                                    ["0001-01-01T00:00:00+14:00", 1], ["9999-12-31T23:59:59-12:00", 1]])
async def test_a_foreign_cursor_is_refused_or_harmless(world: World, household: httpx.AsyncClient,
                                                       values: list[Any]) -> None:
    response = await household.get(log_url(world.padang), params={"cursor": encode_cursor(*values)},
                                   headers=world.padang.kader())
    # A cursor of the right types is a place to start (a page); anything else is a 400, never a 5xx.
    assert response.status_code in (200, 400), response.text
    if values[0] in ("not", "2026-12-01T00:00:00"):
        assert response.status_code == 400


async def test_the_report_lists_the_reads_in_indonesian_and_escapes_what_it_shows(
        world: World, household: httpx.AsyncClient, referral: httpx.AsyncClient, stack: Stack) -> None:
    site = world.solok
    script = "<script>alert('akses')</script>"
    # An actor with markup in its subject reads the referral; another service's event carries markup in its purpose.
    prankster = {"Authorization": "Bearer " + mint_token(DEV_JWT_SECRET, Role.OPD, sub=f"opd{script}",
                                                          agency_id=site.agency_id, fields=[site.spm_field])}
    request_id = f"akses-{uuid.uuid4().hex[:12]}"
    assert (await referral.get(f"/api/v1/referrals/{site.referral_id}",
                               headers={**prankster, "X-Request-ID": request_id})).status_code == 200
    await until_logged(household, site, request_id)
    event = _read_event(site, actor="opd-purpose", purpose=f"memeriksa {script}", at=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(AUDIT_TOPIC, event.to_bytes(), key=site.household_id.encode())
    finally:
        await producer.stop()
    await until_logged(household, site, event.data["request_id"])

    response = await household.get(f"{log_url(site)}/report", headers=site.kader())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page and "<b>Uji</b>" not in page
    assert "opd&lt;script&gt;alert(&#x27;akses&#x27;)&lt;/script&gt;" in page
    assert "memeriksa &lt;script&gt;" in page and "Dinas &lt;b&gt;Uji&lt;/b&gt;" in page
    assert "Laporan Akses Data Keluarga" in page and "Petugas dinas (OPD)" in page and "@media print" in page
    assert request_id in page and "WIB" in page
    # Times are the village's local time (Sumatera Barat: WIB, UTC+7).
    local = datetime.fromisoformat(event.data["read_at"]).astimezone(datetime.now(UTC).tzinfo) + timedelta(hours=7)
    assert f"{local:%d-%m-%Y %H:%M} WIB" in page
    # The printing is audited, and the report shows it.
    assert "Laporan akses ini" in page


async def test_the_report_covers_the_period_asked_for(world: World, household: httpx.AsyncClient) -> None:
    site = world.solok
    future = datetime.now(UTC) + timedelta(days=30)
    empty = await household.get(f"{log_url(site)}/report", headers=site.kader(),
                                params={"from": future.isoformat(), "to": (future + timedelta(days=1)).isoformat()})
    assert empty.status_code == 200
    assert "Tidak ada akses tercatat pada periode ini." in empty.text


async def test_the_referral_service_publishes_the_read_with_its_audit_row_and_no_nik(
        world: World, referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> None:
    site = world.padang
    request_id = f"akses-{uuid.uuid4().hex[:12]}"
    read = await referral.get(f"/api/v1/referrals/{site.referral_id}",
                              headers={**site.opd(), "X-Request-ID": request_id})
    assert read.status_code == 200, read.text
    audited = await referral_db.fetchrow("SELECT actor, purpose FROM audit_log WHERE request_id = $1", request_id)
    assert audited is not None and audited["actor"] == f"opd-{site.agency_id}"
    rows = await referral_db.fetch("SELECT topic, key, payload FROM outbox WHERE event_type = $1 AND key = $2",
                                   HOUSEHOLD_READ.name, site.household_id)
    published = [r for r in rows if request_id.encode() in bytes(r["payload"])]
    assert len(published) == 1 and published[0]["topic"] == AUDIT_TOPIC
    # The event names the fields shown, never their values: no full NIK, no evidence.
    assert site.household["members"][0]["nik"].encode() not in bytes(published[0]["payload"])
