"""Every read of personal data in the household and referral services leaves an audit_log row.

The GET routes are taken from the apps' route tables: each is either in PERSONAL_READS (called by a reader with a
need, and a new audit row naming the caller must appear) or in NOT_PERSONAL with the reason, so a new GET route
fails `test_every_get_route_is_classified` until someone decides.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx
import jwt
import pytest

from services.household.app import create_app as create_household_app
from services.household.settings import HouseholdSettings
from services.referral.app import create_app as create_referral_app
from services.referral.settings import ReferralSettings
from tests.security.conftest import SecurityWorld
from tests.support.documents import api_routes

W = SecurityWorld
HH = "/api/v1/households/{household_id}"

#: route -> (concrete path, reader with a need)
PERSONAL_READS: dict[str, tuple[Callable[[W], str], Callable[[W], dict[str, str]]]] = {
    "household /api/v1/households": (lambda w: f"/api/v1/households?posyandu={w.a.posyandu_id}",
                                     lambda w: w.a.kader()),
    f"household {HH}": (lambda w: f"/api/v1/households/{w.a.household_id}", lambda w: w.a.opd()),
    f"household {HH}/profiles/{{field}}": (lambda w: f"/api/v1/households/{w.a.household_id}/profiles/kesehatan",
                                           lambda w: w.a.kader()),
    f"household {HH}/profiles/{{field}}/history": (
        lambda w: f"/api/v1/households/{w.a.household_id}/profiles/kesehatan/history", lambda w: w.a.kader()),
    f"household {HH}/needs": (lambda w: f"/api/v1/households/{w.a.household_id}/needs", lambda w: w.a.kader()),
    f"household {HH}/members/{{member_id}}/measurements": (
        lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/measurements",
        lambda w: w.a.kader()),
    "household /api/v1/duplicates": (lambda w: "/api/v1/duplicates", lambda w: w.a.kader()),
    "household /api/v1/sessions/{session_id}/visits": (lambda w: f"/api/v1/sessions/{w.session_id}/visits",
                                                      lambda w: w.a.kader()),
    "household /api/v1/imports/{id}": (lambda w: f"/api/v1/imports/{w.import_job_id}", lambda w: w.a.kader()),
    "household /api/v1/posyandu/{posyandu_id}/due": (lambda w: f"/api/v1/posyandu/{w.a.posyandu_id}/due",
                                                     lambda w: w.a.kader()),
    f"household {HH}/members/{{member_id}}/visits": (
        lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/visits", lambda w: w.a.kader()),
    f"household {HH}/life-events": (lambda w: f"/api/v1/households/{w.a.household_id}/life-events",
                                   lambda w: w.a.kader()),
    f"household {HH}/members/{{member_id}}/immunizations": (
        lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations",
        lambda w: w.a.kader()),
    f"household {HH}/members/{{member_id}}/immunizations/status": (
        lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations/status",
        lambda w: w.a.kader()),
    f"household {HH}/members/{{member_id}}/fhir": (
        lambda w: f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/fhir", lambda w: w.a.opd()),
    "referral /api/v1/referrals": (lambda w: "/api/v1/referrals", lambda w: w.a.kader()),
    "referral /api/v1/referrals/{referral_id}": (lambda w: f"/api/v1/referrals/{w.a.referral_id}",
                                                 lambda w: w.a.opd()),
    "referral /api/v1/referrals/{referral_id}/history": (
        lambda w: f"/api/v1/referrals/{w.a.referral_id}/history", lambda w: w.a.opd()),
    "referral /api/v1/referrals/{referral_id}/notes": (lambda w: f"/api/v1/referrals/{w.a.referral_id}/notes",
                                                       lambda w: w.a.kader()),
    "referral /api/v1/agencies/{agency_id}/referrals": (lambda w: f"/api/v1/agencies/{w.a.agency_id}/referrals",
                                                        lambda w: w.a.opd()),
    # Who looked at a family (which agencies act on it) is itself data about the family: its reads are audited.
    f"household {HH}/access-log": (lambda w: f"/api/v1/households/{w.a.household_id}/access-log",
                                   lambda w: w.a.kader()),
    f"household {HH}/access-log/report": (lambda w: f"/api/v1/households/{w.a.household_id}/access-log/report",
                                          lambda w: w.a.kader()),
}
NOT_PERSONAL = {
    "household /api/v1/audit-log": "the audit trail itself (admin only); a row per read of it would feed on itself",
    "referral /api/v1/audit-log": "the audit trail itself (admin only)",
    **{f"referral {path}": "SLA and routing configuration (admin only): no person's data"
       for path in ("/api/v1/sla/overrides", "/api/v1/sla/overrides/{override_id}", "/api/v1/sla/escalation-delays",
                    "/api/v1/sla/holiday-calendars", "/api/v1/sla/holiday-calendars/{year}",
                    "/api/v1/routing-rules", "/api/v1/routing-rules/{rule_id}")},
    **{f"referral {path}": "webhook configuration and its delivery log (ids, times, HTTP results; no bodies)"
       for path in ("/api/v1/webhooks/subscriptions", "/api/v1/webhooks/subscriptions/{subscription_id}",
                    "/api/v1/webhooks/subscriptions/{subscription_id}/deliveries")},
    "household /api/v1/immunization/schedule": "the national immunisation schedule: public reference data",
    **{f"household {path}": "a posyandu's sessions: dates, states and who opened them; no member's data"
       for path in ("/api/v1/sessions", "/api/v1/sessions/{session_id}")},
    **{f"{service} /api/v1/dead-letters": "dead letters without their bodies (ids, offsets, event types, errors "
                                          "without field values); admin only"
       for service in ("household", "referral")},
}
#: Personal reads whose audit row another test proves, with where: their object needs a set-up of its own.
AUDITED_ELSEWHERE = {
    f"{service} /api/v1/dead-letters/{{dead_letter_id}}":
        "a dead letter's body: tests/faults/test_dead_letters.py poisons a consumer and checks the audit row "
        "(shared/dead_letters.py, the same code in every consuming service)"
    for service in ("household", "referral")
} | {
    f"household {path}": "a beneficiary list and the aid reports audit each row or household they return: "
                         "services/household/tests/test_beneficiaries.py checks the rows (their objects need "
                         "programme lists of their own)"
    for path in ("/api/v1/programmes/{programme_id}/beneficiaries", "/api/v1/aid/overlaps", "/api/v1/aid/unserved")
}
APPS = {"household": create_household_app(), "referral": create_referral_app()}


def _get_routes() -> set[str]:
    return {f"{service} {route.path}" for service, app in APPS.items() for route in api_routes(app.routes)
            if "GET" in (route.methods or ()) and route.path.startswith("/api/")}


def test_every_get_route_is_classified() -> None:
    assert _get_routes() == set(PERSONAL_READS) | set(NOT_PERSONAL) | set(AUDITED_ELSEWHERE)
    assert not set(PERSONAL_READS) & set(NOT_PERSONAL)


@pytest.mark.parametrize("route", sorted(PERSONAL_READS))
async def test_a_read_of_personal_data_is_audited(route: str, security_world: W, household: httpx.AsyncClient,
                                                  referral: httpx.AsyncClient, household_settings: HouseholdSettings,
                                                  referral_settings: ReferralSettings) -> None:
    service = route.split(" ", 1)[0]
    path, reader = PERSONAL_READS[route]
    headers = reader(security_world)
    client, dsn = ((household, household_settings.database_url) if service == "household"
                   else (referral, referral_settings.database_url))
    conn = await asyncpg.connect(dsn)
    try:
        last = await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
        response = await client.get(path(security_world), headers=headers)
        assert response.status_code == 200, response.text
        rows = await conn.fetch("SELECT actor, action, subject_ref, purpose FROM audit_log WHERE id > $1", last)
    finally:
        await conn.close()
    reader_sub = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})["sub"]
    assert rows, f"no audit row for {route}"
    assert any(r["actor"] == reader_sub for r in rows)
    assert all(r["action"] == "read" and r["purpose"] for r in rows)
    assert any(r["subject_ref"] in (security_world.a.household_id, None) for r in rows)
