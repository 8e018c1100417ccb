"""An event whose village or jurisdiction code is no region code (other digits, another length, LIKE's `%`) goes
to the dead-letter topic instead of into the projections, where it would be a region of its own in every
breakdown, or (an agency of jurisdiction `%`) a row of every matrix."""

from __future__ import annotations

import asyncpg
import httpx

from services.reporting.settings import ReportingSettings
from services.reporting.tests.factories import Stream, at, previous_month, publish, until_consumed
from shared.events.topics import dead_letter_topic
from tests.support import tokens
from tests.support.kafka import Received, read_topic

GOOD = "9601011001"  # Papua Selatan (96), no other test's
BAD = ["8", "960101100", "96010110011", "\u0669\u0666\u0660\u0661\u0660\u0661\u0661\u0660\u0660\u0661", "%", "96__"]


async def test_events_with_malformed_codes_are_dead_lettered(reporting: httpx.AsyncClient,
                                                             reporting_settings: ReportingSettings) -> None:
    period, first, _ = previous_month()
    s = Stream(default_time=at(first, 8))
    good = s.household(GOOD)
    for code in BAD:
        home = s.household(code)
        s.need(home, code, "kesehatan.stunting", detected=at(first, 9))
        s.referral(code, "kesehatan.stunting", created=at(first, 10), agency_id=None, steps=[])
        s.posyandu(code)
        s.agency(code, ["kesehatan"], name=f"Dinas {code}")
    await publish(reporting_settings.kafka_bootstrap_servers, s.events)
    await until_consumed(reporting_settings.database_url, [(t, e) for t, e in s.events if e.subject == str(good)])
    bad_ids = {e.id for _, e in s.events if e.subject != str(good)}

    def all_parked(received: list[Received]) -> bool:
        return bad_ids <= {r.event.id for r in received if r.event is not None}

    parked = await read_topic(reporting_settings.kafka_bootstrap_servers, dead_letter_topic("reporting"),
                              until=all_parked, timeout=60)
    assert all(r.headers["dlq_error"] for r in parked if r.event is not None and r.event.id in bad_ids)
    conn = await asyncpg.connect(reporting_settings.database_url)
    try:
        for table, column in (("households", "village_code"), ("needs", "village_code"),
                              ("referrals", "village_code"), ("posyandu", "village_code"),
                              ("agencies", "jurisdiction_code")):
            stored = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = ANY($1::text[])", BAD)
            assert stored == 0, table
    finally:
        await conn.close()
    for params in ({"period": period, "by": "province"}, {"period": period, "by": "village", "region": "96"}):
        response = await reporting.get("/api/v1/indicators", params=params, headers=tokens.admin())
        assert response.status_code == 200, response.text
        assert all(len(r["region_code"]) == {"province": 2, "village": 10}[params["by"]]
                   for r in response.json()["rows"])
    matrix = (await reporting.get("/api/v1/matrix", params={"period": period}, headers=tokens.admin())).json()
    assert not [r for r in matrix["rows"] if r["jurisdiction_code"] in BAD]
