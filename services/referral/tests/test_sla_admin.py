"""SLA administration over the API: overrides (precedence, new referrals only), working days with the holiday
calendar and its versions, the escalation delay; validation, roles, If-Match, Idempotency-Key, audit rows.

Kota Dumai (1472) and the field pekerjaan-umum are this module's own: no other test routes referrals there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.referral.settings import ReferralSettings
from services.referral.sla.calendar import WIB, WIT, WITA, add_working_days, local_zone, shipped_holidays
from services.referral.tests.factories import create_referral, known_agency, known_household, known_posyandu
from tests.support import tokens
from tests.support.clock import set_clock

FIELD, CATEGORY, OTHER_CATEGORY = "pekerjaan-umum", "pekerjaan-umum.drinking-water", "pekerjaan-umum.wastewater"
DUMAI_VILLAGE = "1472011003"  # a kelurahan of Kota Dumai, Riau (WIB)
OVERRIDES = "/api/v1/sla/overrides"


@pytest.fixture
async def household_in_dumai(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                             household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> dict[str, Any]:
    if not await referral_db.fetchval("SELECT count(*) FROM known_agencies WHERE jurisdiction_code = '1472' "
                                      "AND $1 = ANY(spm_fields)", FIELD):
        await known_agency(registry, referral_db, "1472", [FIELD])
    place = await known_posyandu(registry, household_db, DUMAI_VILLAGE)
    return await known_household(household, referral_db, place, DUMAI_VILLAGE)


@pytest.fixture
def clock(referral_settings: ReferralSettings) -> Iterator[list[datetime]]:
    """The service's clock, set by the test: `clock[0] = ...`."""
    # Wednesday 23 December 2026, 10:00 WIB.
    with set_clock(referral_settings, datetime(2026, 12, 23, 3, 0, tzinfo=UTC)) as now:
        yield now


def _deadlines(made: dict[str, Any]) -> tuple[timedelta, timedelta]:
    created_at = datetime.fromisoformat(made["created_at"])
    return (datetime.fromisoformat(made["respond_by"]) - created_at,
            datetime.fromisoformat(made["complete_by"]) - created_at)


async def _override(referral: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await referral.post(OVERRIDES, json=body, headers=tokens.admin())


async def _delete_all(referral: httpx.AsyncClient, ids: list[int]) -> None:
    for override_id in ids:
        assert (await referral.delete(f"{OVERRIDES}/{override_id}", headers=tokens.admin())).status_code == 204


async def test_an_override_via_the_api_changes_the_deadline_of_new_referrals_only(
        referral: httpx.AsyncClient, household_in_dumai: dict[str, Any], referral_db: asyncpg.Connection) -> None:
    before = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=CATEGORY, urgency="high")
    assert _deadlines(before) == (timedelta(days=3), timedelta(days=14))  # the default of DOMAIN.md §6

    response = await _override(referral, urgency="high", agency_id=before["agency_id"], category=CATEGORY,
                               respond_within=4, complete_within=48, unit="hours")
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["ETag"] == '"1"' and response.headers["Location"] == f"{OVERRIDES}/{created['id']}"
    try:
        after = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=CATEGORY,
                                      urgency="high")
        assert _deadlines(after) == (timedelta(hours=4), timedelta(hours=48))
        unchanged = (await referral.get(f"/api/v1/referrals/{before['id']}", headers=tokens.admin())).json()
        assert (unchanged["respond_by"], unchanged["complete_by"]) == (before["respond_by"], before["complete_by"])
        # Another urgency and another category keep the default.
        normal = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=CATEGORY,
                                       urgency="normal")
        assert _deadlines(normal) == (timedelta(days=7), timedelta(days=30))
        other = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=OTHER_CATEGORY,
                                      urgency="high")
        assert _deadlines(other) == (timedelta(days=3), timedelta(days=14))

        audit = await referral_db.fetch("SELECT actor, action, fields FROM audit_log WHERE resource_type = "
                                        "'sla.override' AND resource_id = $1 ORDER BY id", str(created["id"]))
        assert [(a["actor"], a["action"]) for a in audit] == [("admin-test", "create")]
    finally:
        await _delete_all(referral, [created["id"]])
    audit = await referral_db.fetch("SELECT action FROM audit_log WHERE resource_type = 'sla.override' "
                                    "AND resource_id = $1 ORDER BY id", str(created["id"]))
    assert [a["action"] for a in audit] == ["create", "delete"]


async def test_the_most_specific_override_wins_agency_then_category_then_the_longest_region(
        referral: httpx.AsyncClient, household_in_dumai: dict[str, Any]) -> None:
    def make(category: str) -> Any:
        return create_referral(referral, household_in_dumai, spm_field=FIELD, category=category, urgency="low")

    probe = await make(CATEGORY)
    ids: list[int] = []

    async def add(respond: int, **scope: Any) -> None:
        response = await _override(referral, urgency="low", respond_within=respond, complete_within=100, **scope)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    try:
        await add(10, region_prefix="14")
        assert _deadlines(await make(OTHER_CATEGORY))[0] == timedelta(hours=10)
        await add(11, region_prefix="1472")  # a longer region prefix is more specific
        assert _deadlines(await make(OTHER_CATEGORY))[0] == timedelta(hours=11)
        await add(12, region_prefix="14", category=CATEGORY)  # the category beats a longer region
        assert _deadlines(await make(CATEGORY))[0] == timedelta(hours=12)
        assert _deadlines(await make(OTHER_CATEGORY))[0] == timedelta(hours=11)
        await add(13, agency_id=probe["agency_id"])  # the agency beats the category
        assert _deadlines(await make(CATEGORY))[0] == timedelta(hours=13)
        await add(14, agency_id=probe["agency_id"], category=CATEGORY)  # agency and category beat agency alone
        assert _deadlines(await make(CATEGORY))[0] == timedelta(hours=14)
        assert _deadlines(await make(OTHER_CATEGORY))[0] == timedelta(hours=13)
        await add(15, region_prefix="3174")  # another region's override never applies here
        assert _deadlines(await make(OTHER_CATEGORY))[0] == timedelta(hours=13)
    finally:
        await _delete_all(referral, ids)
    assert _deadlines(await make(CATEGORY)) == (timedelta(days=14), timedelta(days=90))


async def test_working_day_deadlines_skip_the_weekend_and_the_holidays_of_the_calendar_in_force(
        referral: httpx.AsyncClient, household_in_dumai: dict[str, Any], clock: list[datetime]) -> None:
    response = await _override(referral, urgency="normal", region_prefix="1472", category=OTHER_CATEGORY,
                               respond_within=2, complete_within=4, unit="working_days")
    assert response.status_code == 201, response.text
    override_id = response.json()["id"]
    try:
        # Wednesday 23 December 2026, 10:00 WIB: Thursday 24 is cuti bersama, Friday 25 Christmas, then the
        # weekend; the working days are Monday 28, Tuesday 29, Wednesday 30, Thursday 31.
        made = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=OTHER_CATEGORY,
                                     urgency="normal")
        assert made["created_at"] == "2026-12-23T03:00:00Z"
        assert datetime.fromisoformat(made["respond_by"]) == datetime(2026, 12, 29, 3, 0, tzinfo=UTC)
        assert datetime.fromisoformat(made["complete_by"]) == datetime(2026, 12, 31, 3, 0, tzinfo=UTC)

        # A revised calendar (a new version of 2026) adds Monday 28 as cuti bersama: new referrals skip it too,
        # the one made before keeps its deadlines.
        in_force = (await referral.get("/api/v1/sla/holiday-calendars/2026", headers=tokens.admin())).json()
        assert in_force["version"] == 1 and in_force["in_force"]
        revised = {"year": 2026, "source": "SKB 3 Menteri 2026, perubahan (test)",
                   "holidays": [*in_force["holidays"], {"date": "2026-12-28", "kind": "cuti-bersama",
                                                        "name": "Cuti bersama tambahan"}]}
        added = await referral.post("/api/v1/sla/holiday-calendars", json=revised,
                                    headers={**tokens.admin(), "Idempotency-Key": "calendar-2026-2"})
        assert added.status_code == 201, added.text
        assert added.json()["version"] == 2 and added.json()["in_force"]
        again = await referral.post("/api/v1/sla/holiday-calendars", json=revised,
                                    headers={**tokens.admin(), "Idempotency-Key": "calendar-2026-2"})
        assert again.json()["version"] == 2 and again.headers["Idempotent-Replayed"] == "true"
        versions = (await referral.get("/api/v1/sla/holiday-calendars", headers=tokens.admin())).json()
        assert [(c["version"], c["in_force"]) for c in versions if c["year"] == 2026] == [(1, False), (2, True)]

        later = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=OTHER_CATEGORY,
                                      urgency="normal")
        assert datetime.fromisoformat(later["respond_by"]) == datetime(2026, 12, 30, 3, 0, tzinfo=UTC)
        kept = (await referral.get(f"/api/v1/referrals/{made['id']}", headers=tokens.admin())).json()
        assert datetime.fromisoformat(kept["respond_by"]) == datetime(2026, 12, 29, 3, 0, tzinfo=UTC)

        # Made on a Saturday, the count starts on Monday.
        clock[0] = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # Saturday 5 December, 08:30 WIB
        weekend = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=OTHER_CATEGORY,
                                        urgency="normal")
        assert datetime.fromisoformat(weekend["respond_by"]) == datetime(2026, 12, 8, 1, 30, tzinfo=UTC)
    finally:
        await _delete_all(referral, [override_id])


async def test_the_escalation_delay_is_set_per_urgency_and_counts_working_days_where_asked(
        referral: httpx.AsyncClient, household_in_dumai: dict[str, Any], clock: list[datetime],
        referral_db: asyncpg.Connection) -> None:
    audited = await referral_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    delays = (await referral.get("/api/v1/sla/escalation-delays", headers=tokens.admin())).json()
    low = next(d for d in delays if d["urgency"] == "low")
    assert low == {"urgency": "low", "delay": 7, "unit": "days", "configured": False, "version": 0}
    url = "/api/v1/sla/escalation-delays/low"
    stale = await referral.put(url, json={"delay": 3, "unit": "working_days"},
                               headers={**tokens.admin(), "If-Match": '"5"'})
    assert stale.status_code == 412 and stale.json()["current_etag"] == '"0"'
    response = await referral.put(url, json={"delay": 3, "unit": "working_days"},
                                  headers={**tokens.admin(), "If-Match": '"0"'})
    assert response.status_code == 200, response.text
    assert response.json()["configured"] and response.headers["ETag"] == '"1"'
    try:
        clock[0] = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # Monday 7 December 2026, 10:00 WIB
        override = await _override(referral, urgency="low", region_prefix="1472", respond_within=1,
                                   complete_within=2, unit="days")
        assert override.status_code == 201, override.text
        try:
            made = await create_referral(referral, household_in_dumai, spm_field=FIELD, category=CATEGORY,
                                         urgency="low")
        finally:
            await _delete_all(referral, [override.json()["id"]])
        # Complete by Wednesday 9 December; three working days later is Monday 14 December.
        assert datetime.fromisoformat(made["complete_by"]) == datetime(2026, 12, 9, 3, 0, tzinfo=UTC)
        escalate_at = await referral_db.fetchval("SELECT escalate_at FROM referrals WHERE id = $1",
                                                 uuid.UUID(made["id"]))
        assert escalate_at == datetime(2026, 12, 14, 3, 0, tzinfo=UTC)
    finally:
        restored = await referral.put(url, json={"delay": 7, "unit": "days"}, headers=tokens.admin())
        assert restored.status_code == 200 and restored.json()["version"] == 2
    actions = await referral_db.fetch("SELECT action, resource_id FROM audit_log WHERE id > $1 AND "
                                      "resource_type = 'sla.escalation-delay' ORDER BY id", audited)
    assert [(a["action"], a["resource_id"]) for a in actions] == [("update", "low"), ("update", "low")]


@pytest.mark.parametrize(("body", "field"), [
    ({"urgency": "high", "category": "kesehatan.no-such-thing", "respond_within": 4, "complete_within": 8},
     "category"),
    ({"urgency": "high", "respond_within": -4, "complete_within": 8}, "respond_within"),
    ({"urgency": "high", "respond_within": 0, "complete_within": 8}, "respond_within"),
    ({"urgency": "high", "region_prefix": "31a", "respond_within": 4, "complete_within": 8}, "region_prefix"),
    ({"urgency": "high", "region_prefix": "147", "respond_within": 4, "complete_within": 8}, "region_prefix"),
    ({"urgency": "urgent", "respond_within": 4, "complete_within": 8}, "urgency"),
    ({"urgency": "high", "respond_within": 9, "complete_within": 8}, "body"),
    ({"urgency": "high", "respond_within": 4, "complete_within": 300, "unit": "working_days"}, "body"),
    ({"urgency": "high", "respond_within": 4, "complete_within": 8, "unit": "fortnights"}, "unit"),
    ({"urgency": "high", "respond_within": 4.5, "complete_within": 8}, "respond_within"),
    ({"urgency": "high", "respond_within": 4, "complete_within": 8, "extra": 1}, "extra"),
])
async def test_bad_overrides_are_422_problems_and_change_nothing(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection, body: dict[str, Any], field: str) -> None:
    count = await referral_db.fetchval("SELECT count(*) FROM sla_overrides")
    response = await _override(referral, **body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(f"body.{field}") or e["field"] == field for e in problem["errors"]), problem
    assert await referral_db.fetchval("SELECT count(*) FROM sla_overrides") == count


async def test_an_override_for_an_unknown_agency_and_a_bad_calendar_are_refused(referral: httpx.AsyncClient) -> None:
    response = await _override(referral, urgency="high", agency_id=str(uuid.uuid4()), respond_within=4,
                               complete_within=8)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "agency_id"
    for holidays in ([{"date": "2027-01-01", "kind": "libur-nasional", "name": "Tahun Baru"}],
                     [{"date": "2028-01-01", "kind": "libur-nasional", "name": "A"},
                      {"date": "2028-01-01", "kind": "cuti-bersama", "name": "B"}],
                     [{"date": "2028-01-01", "kind": "hari-raya", "name": "A"}], []):
        bad = await referral.post("/api/v1/sla/holiday-calendars", headers=tokens.admin(),
                                  json={"year": 2028, "source": "test", "holidays": holidays})
        assert bad.status_code == 422, bad.text
    assert (await referral.get("/api/v1/sla/holiday-calendars/2028", headers=tokens.admin())).status_code == 404
    assert (await referral.get("/api/v1/sla/overrides/99999", headers=tokens.admin())).status_code == 404
    bad_delay = await referral.put("/api/v1/sla/escalation-delays/high", json={"delay": -1},
                                   headers=tokens.admin())
    assert bad_delay.status_code == 422


@pytest.mark.parametrize("who", ["kader", "opd", "pembina", "service"])
async def test_only_an_admin_administers_slas(referral: httpx.AsyncClient, who: str) -> None:
    headers = {"kader": tokens.kader([uuid.uuid4()]), "opd": tokens.opd(uuid.uuid4(), [FIELD]),
               "pembina": tokens.pembina("1472"), "service": tokens.service()}[who]
    body = {"urgency": "high", "respond_within": 4, "complete_within": 8}
    for method, url, json in (("GET", OVERRIDES, None), ("POST", OVERRIDES, body),
                              ("PUT", f"{OVERRIDES}/1", body), ("DELETE", f"{OVERRIDES}/1", None),
                              ("GET", "/api/v1/sla/escalation-delays", None),
                              ("PUT", "/api/v1/sla/escalation-delays/high", {"delay": 1}),
                              ("GET", "/api/v1/sla/holiday-calendars", None),
                              ("POST", "/api/v1/sla/holiday-calendars", {"year": 2029, "source": "x",
                                                                         "holidays": []})):
        response = await referral.request(method, url, json=json, headers=headers)
        assert response.status_code == 403, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_updates_honour_if_match_and_creates_honour_idempotency_keys(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> None:
    body = {"urgency": "emergency", "region_prefix": "1472", "respond_within": 2, "complete_within": 24}
    headers = {**tokens.admin(), "Idempotency-Key": f"override-{uuid.uuid4()}"}
    first = await referral.post(OVERRIDES, json=body, headers=headers)
    assert first.status_code == 201, first.text
    replay = await referral.post(OVERRIDES, json=body, headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await referral.post(OVERRIDES, json={**body, "respond_within": 3}, headers=headers)).status_code == 409
    duplicate = await referral.post(OVERRIDES, json={**body, "respond_within": 3}, headers=tokens.admin())
    assert duplicate.status_code == 409 and duplicate.headers["content-type"] == "application/problem+json"
    other = await referral.post(OVERRIDES, json={**body, "urgency": "normal"}, headers=tokens.admin())
    assert other.status_code == 201, other.text
    clash = await referral.put(f"{OVERRIDES}/{other.json()['id']}", json=body, headers=tokens.admin())
    assert clash.status_code == 409, clash.text  # moved onto the first one's scope
    assert (await referral.delete(f"{OVERRIDES}/{other.json()['id']}", headers=tokens.admin())).status_code == 204

    url = f"{OVERRIDES}/{first.json()['id']}"
    changed = {**body, "respond_within": 3}
    stale = await referral.put(url, json=changed, headers={**tokens.admin(), "If-Match": '"2"'})
    assert stale.status_code == 412 and stale.json()["current_etag"] == '"1"'
    updated = await referral.put(url, json=changed, headers={**tokens.admin(), "If-Match": '"1"'})
    assert updated.status_code == 200 and updated.headers["ETag"] == '"2"'
    assert updated.json()["respond_within"] == 3
    read = await referral.get(url, headers=tokens.admin())
    assert read.headers["ETag"] == '"2"' and read.json() == updated.json()
    listed = (await referral.get(OVERRIDES, params={"urgency": "emergency"}, headers=tokens.admin())).json()
    assert first.json()["id"] in [o["id"] for o in listed["items"]]
    assert (await referral.delete(url, headers={**tokens.admin(), "If-Match": '"1"'})).status_code == 412
    assert (await referral.delete(url, headers={**tokens.admin(), "If-Match": '"2"'})).status_code == 204
    assert (await referral.get(url, headers=tokens.admin())).status_code == 404
    audit = await referral_db.fetch("SELECT action, fields FROM audit_log WHERE resource_type = 'sla.override' "
                                    "AND resource_id = $1 ORDER BY id", str(first.json()["id"]))
    assert [a["action"] for a in audit] == ["create", "update", "delete"]
    assert audit[1]["fields"] == '["respond_within"]'


def test_working_days_count_in_the_villages_time_zone() -> None:
    holidays = {r.date for r in shipped_holidays() if (r.year, r.version) == (2026, 1)}
    start = datetime(2026, 12, 23, 16, 30, tzinfo=UTC)  # Wednesday 23:30 WIB, but Thursday 24 00:30 WITA
    assert local_zone("6472011001") is WITA and local_zone("3171011001") is WIB and local_zone("9471") is WIT
    # In Samarinda it is already Thursday 24 (cuti bersama): the first working day after it is Monday 28.
    assert add_working_days(start, 1, holidays, WITA) == datetime(2026, 12, 27, 16, 30, tzinfo=UTC)
    # In Jakarta it is still Wednesday: Monday 28 at 23:30 WIB.
    assert add_working_days(start, 1, holidays, WIB) == datetime(2026, 12, 28, 16, 30, tzinfo=UTC)


async def test_the_shipped_calendars_are_loaded_and_a_years_highest_version_is_in_force(
        referral: httpx.AsyncClient) -> None:
    shipped = shipped_holidays()
    for year, version in {(r.year, r.version) for r in shipped}:
        served = (await referral.get(f"/api/v1/sla/holiday-calendars/{year}", params={"version": version},
                                     headers=tokens.admin())).json()
        assert [(h["date"], h["kind"], h["name"]) for h in served["holidays"]] == [
            (r.date.isoformat(), r.kind, r.name) for r in shipped if (r.year, r.version) == (year, version)]
    in_force = (await referral.get("/api/v1/sla/holiday-calendars/2025", headers=tokens.admin())).json()
    assert in_force["version"] == 2 and in_force["in_force"]
    assert "2025-08-18" in [h["date"] for h in in_force["holidays"]]  # the revision's added cuti bersama
    first = (await referral.get("/api/v1/sla/holiday-calendars/2025?version=1", headers=tokens.admin())).json()
    assert not first["in_force"] and "2025-08-18" not in [h["date"] for h in first["holidays"]]
