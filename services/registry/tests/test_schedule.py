"""Opening days: a monthly rule with extra, moved and cancelled days, listed as dates, written by the posyandu's
own kader, its pembina or an admin, and announced with the whole schedule on posyandu.registry.v1."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from shared.opening_days import DayKind, MonthlyRule, Ordinal, Schedule, Weekday
from tests.support import tokens

#: Reserved for these tests (issue 14): Kota Denpasar (5171) in Bali (51), and 5172.
BALI_REGIONS = ("kode,nama\n51,Bali\n51.71,Kota Denpasar\n51.71.01,Denpasar Selatan\n51.71.01.1001,Sesetan\n"
                "51.72,Kota Uji Jadwal\n51.72.01,Uji Jadwal\n51.72.01.1001,Jadwal\n")
SESETAN = "5171011001"


async def bali_posyandu(registry: httpx.AsyncClient, village_code: str = SESETAN) -> str:
    imported = await registry.post("/api/v1/regions/import", content=BALI_REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    response = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"P{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": "Posyandu Cempaka",
        "village_code": village_code})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def second_tuesday_schedule() -> dict[str, Any]:
    return {"rule": {"ordinal": "second", "weekday": "tuesday"},
            "extra_days": [{"date": "2027-03-20", "reason": "Imunisasi kejar"}],
            "moved_days": [{"from_date": "2027-04-13", "to_date": "2027-04-15", "reason": "Hari raya"}],
            "cancelled_days": [{"date": "2027-05-11", "reason": "Banjir"}]}


@pytest.mark.parametrize(("ordinal", "weekday", "month", "expected"), [
    (Ordinal.SECOND, Weekday.TUESDAY, (2027, 3), date(2027, 3, 9)),
    (Ordinal.FIRST, Weekday.MONDAY, (2027, 3), date(2027, 3, 1)),     # the month starts on a Monday
    (Ordinal.FOURTH, Weekday.SUNDAY, (2027, 2), date(2027, 2, 28)),
    (Ordinal.LAST, Weekday.WEDNESDAY, (2027, 3), date(2027, 3, 31)),  # a fifth Wednesday
    (Ordinal.LAST, Weekday.FRIDAY, (2028, 2), date(2028, 2, 25)),     # a leap February
])
def test_the_rule_names_one_day_a_month(ordinal: Ordinal, weekday: Weekday, month: tuple[int, int],
                                        expected: date) -> None:
    assert MonthlyRule(ordinal, weekday).day_in(*month) == expected


def test_exceptions_replace_rule_days() -> None:
    schedule = Schedule(rule=MonthlyRule(Ordinal.SECOND, Weekday.TUESDAY), extra=frozenset({date(2027, 3, 20)}),
                        moved={date(2027, 4, 13): date(2027, 4, 15)}, cancelled=frozenset({date(2027, 5, 11)}))
    days = schedule.opening_days(date(2027, 3, 1), date(2027, 6, 30))
    assert [(d.date, d.kind) for d in days] == [
        (date(2027, 3, 9), DayKind.RULE), (date(2027, 3, 20), DayKind.EXTRA), (date(2027, 4, 15), DayKind.MOVED),
        (date(2027, 6, 8), DayKind.RULE)]
    assert schedule.is_opening_day(date(2027, 4, 15)) and not schedule.is_opening_day(date(2027, 4, 13))
    assert not schedule.is_opening_day(date(2027, 5, 11))


async def test_a_schedule_is_written_listed_and_announced(registry: httpx.AsyncClient,
                                                         registry_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu}/schedule"
    empty = await registry.get(url, headers=tokens.kader([posyandu]))
    assert empty.status_code == 200 and empty.json()["version"] == 0 and empty.json()["rule"] is None

    written = await registry.put(url, json=second_tuesday_schedule(), headers=tokens.kader([posyandu]))
    assert written.status_code == 200, written.text
    assert written.headers["ETag"] == '"1"' and written.json()["moved_days"][0]["reason"] == "Hari raya"

    listed = await registry.get(f"/api/v1/posyandu/{posyandu}/opening-days",
                                params={"from": "2027-03-01", "to": "2027-06-30"}, headers=tokens.pembina("51"))
    assert listed.status_code == 200, listed.text
    assert [(d["date"], d["kind"], d["moved_from"], d["reason"]) for d in listed.json()["items"]] == [
        ("2027-03-09", "rule", None, None), ("2027-03-20", "extra", None, "Imunisasi kejar"),
        ("2027-04-15", "moved", "2027-04-13", "Hari raya"), ("2027-06-08", "rule", None, None)]

    row = await registry_db.fetchrow("SELECT payload, key FROM outbox WHERE event_type = $1 AND key = $2",
                                     "posyandu.schedule.changed.v1", posyandu)
    event = json.loads(row["payload"])
    assert event["subject"] == posyandu and event["regioncode"] == SESETAN
    data = event["data"]
    assert data["rule"] == {"ordinal": "second", "weekday": "tuesday"} and data["version"] == 1
    assert data["moved_days"] == [{"from_date": "2027-04-13", "to_date": "2027-04-15"}]
    assert data["cancelled_days"] == ["2027-05-11"] and data["extra_days"] == ["2027-03-20"]
    # The coming twelve months from the first of this month, one rule day in each.
    start, end = date.fromisoformat(data["opening_days_from"]), date.fromisoformat(data["opening_days_to"])
    assert start == date.today().replace(day=1) and len(data["opening_days"]) == 12
    assert all(start <= date.fromisoformat(d) <= end for d in data["opening_days"])
    assert "reason" not in json.dumps(data)

    # The whole schedule is replaced: what is not listed any more is no longer an exception.
    stale = await registry.put(url, json={"rule": None}, headers={**tokens.admin(), "If-Match": '"0"'})
    assert stale.status_code == 412
    replaced = await registry.put(url, json={"rule": None, "extra_days": [{"date": "2027-03-20", "reason": "x"}]},
                                  headers={**tokens.admin(), "If-Match": '"1"'})
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    listed = await registry.get(f"/api/v1/posyandu/{posyandu}/opening-days",
                                params={"from": "2027-01-01", "to": "2027-12-31"}, headers=tokens.admin())
    assert [d["date"] for d in listed.json()["items"]] == ["2027-03-20"]
    assert await registry_db.fetchval("SELECT count(*) FROM schedule_exceptions WHERE posyandu_id = $1",
                                      uuid.UUID(posyandu)) == 1


async def test_only_the_posyandus_kader_its_pembina_and_admins_write_its_schedule(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu}/schedule"
    body = {"rule": {"ordinal": "last", "weekday": "friday"}}
    for headers in (tokens.kader([uuid.uuid4()]), tokens.pembina("3171"), tokens.opd(uuid.uuid4(), ["kesehatan"]),
                    tokens.service()):
        refused = await registry.put(url, json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu_schedules WHERE posyandu_id = $1",
                                      uuid.UUID(posyandu)) == 0
    assert (await registry.put(url, json=body, headers=tokens.pembina("5171"))).status_code == 200
    other = {"rule": {"ordinal": "first", "weekday": "monday"}}
    assert (await registry.put(url, json=other, headers=tokens.admin())).json()["version"] == 2
    unknown = await registry.put(f"/api/v1/posyandu/{uuid.uuid4()}/schedule", json=body, headers=tokens.admin())
    assert unknown.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"rule": {"ordinal": "second", "weekday": "tuesday"},
      "cancelled_days": [{"date": "2027-05-12", "reason": "not a rule day"}]}, "cancelled_days.0.date"),
    ({"rule": {"ordinal": "second", "weekday": "tuesday"},
      "moved_days": [{"from_date": "2027-05-12", "to_date": "2027-05-14", "reason": "x"}]}, "moved_days.0.from_date"),
    ({"rule": {"ordinal": "second", "weekday": "tuesday"},
      "moved_days": [{"from_date": "2027-05-11", "to_date": "2027-06-08", "reason": "x"}]}, "moved_days.0.to_date"),
    ({"rule": {"ordinal": "second", "weekday": "tuesday"},
      "extra_days": [{"date": "2027-05-11", "reason": "already a rule day"}]}, "extra_days.0.date"),
    ({"rule": None, "extra_days": [{"date": "2027-05-12", "reason": "a"}, {"date": "2027-05-12", "reason": "b"}]},
     "extra_days.1.date"),
    ({"rule": {"ordinal": "fifth", "weekday": "tuesday"}}, "body.rule.ordinal"),
    ({"rule": None, "extra_days": [{"date": "1999-12-31", "reason": "too early"}]}, "body.extra_days.0.date"),
    ({"rule": None, "extra_days": [{"date": "2027-05-12", "reason": ""}]}, "body.extra_days.0.reason"),
    ({"rule": None, "holidays": []}, "body.holidays"),
])
async def test_a_bad_schedule_is_refused_and_nothing_is_stored(registry: httpx.AsyncClient,
                                                               registry_db: asyncpg.Connection,
                                                               body: dict[str, Any], field: str) -> None:
    posyandu = await bali_posyandu(registry)
    outbox_before = await registry_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", posyandu)
    response = await registry.put(f"/api/v1/posyandu/{posyandu}/schedule", json=body,
                                  headers=tokens.kader([posyandu]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu_schedules WHERE posyandu_id = $1",
                                      uuid.UUID(posyandu)) == 0
    assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", posyandu) == outbox_before


async def test_the_opening_days_range_is_bounded(registry: httpx.AsyncClient) -> None:
    posyandu = await bali_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu}/opening-days"
    for params in ({"from": "2027-01-01", "to": "2026-12-31"}, {"from": "2027-01-01", "to": "2030-01-01"},
                   {"from": "9999-12-31"}):
        response = await registry.get(url, params=params, headers=tokens.admin())
        assert response.status_code == 422, params
    default = await registry.get(url, params={"from": "2027-01-01"}, headers=tokens.admin())
    assert default.status_code == 200 and default.json()["items"] == []


async def test_a_repeated_schedule_changes_nothing_and_a_republish_announces_it_again(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu}/schedule"
    first = await registry.put(url, json=second_tuesday_schedule(), headers=tokens.admin())
    again = await registry.put(url, json=second_tuesday_schedule(), headers=tokens.admin())
    assert first.json() == again.json() and again.headers["ETag"] == '"1"'

    async def announced() -> int:
        return int(await registry_db.fetchval("SELECT count(*) FROM outbox WHERE event_type = $1 AND key = $2",
                                              "posyandu.schedule.changed.v1", posyandu))

    assert await announced() == 1
    report = await registry.post("/api/v1/registry/republish", headers=tokens.admin())
    assert report.status_code == 200 and report.json()["schedules"] >= 1
    assert await announced() == 2
