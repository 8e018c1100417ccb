"""Object-level access on every route with an id, generated from the apps' route tables.

Every route whose path carries an object id (`{..._id}`, `{id}`, `{code}`) must be in CASES: either it is called
with site A's real object by every outsider (a kader of another posyandu, an agency of another field or agency, a
pembina of another region), who must get a 403 or 404 and change nothing, while an insider reading it gets a 2xx
(so the object is real and a 404 means "not yours"); or it is listed as public reference data with the reason.
A new route with an id that is not in CASES fails `test_every_route_with_an_id_is_covered`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.household.app import create_app as create_household_app
from services.referral.app import create_app as create_referral_app
from services.registry.app import create_app as create_registry_app
from tests.security.conftest import SecurityWorld, outsiders_of, site_a_state
from tests.support import tokens
from tests.support.documents import api_routes

W = SecurityWorld
APPS: dict[str, FastAPI] = {"registry": create_registry_app(), "household": create_household_app(),
                            "referral": create_referral_app()}


def _is_id(name: str) -> bool:
    return name in ("id", "code") or name.endswith("_id")


def routes_with_ids() -> set[str]:
    found = set()
    for service, app in APPS.items():
        for route in api_routes(app.routes):
            if any(_is_id(name) for name in route.param_convertors):
                found |= {f"{service} {method} {route.path}" for method in route.methods or ()}
    # The same set from the served OpenAPI documents: a route the walk above missed cannot hide.
    documented = {f"{service} {method.upper()} {path}" for service, app in APPS.items()
                  for path, item in app.openapi()["paths"].items() for method in item
                  if any(_is_id(part[1:-1]) for part in path.split("/") if part.startswith("{"))}
    assert found == documented
    return found


@dataclass(frozen=True)
class Case:
    #: The concrete paths to call, built from site A's objects.
    paths: Callable[[W], list[str]]
    body: Callable[[W], Any] | None = None
    #: Who may read it (a 2xx proves the object is real); None for a write (the database check covers it).
    insider: Callable[[W], dict[str, str]] | None = None
    #: Public reference data: the reason why every authenticated caller may read it.
    public: str | None = None
    #: Outsiders not (yet) refused, each with the reason.
    exempt: dict[str, str] = field(default_factory=dict)
    #: A scoped list: an outsider may get a 200, but never with site A's object in it.
    hidden_in: Callable[[W], str] | None = None


def _webhook(method: str, tail: str) -> Case:
    """A route of site A's agency's webhook subscription (GETs read by that agency)."""
    return Case(lambda w: [f"/api/v1/webhooks/subscriptions/{w.webhook_id}{tail}"],
                insider=(lambda w: w.a.opd()) if method == "GET" else None,
                body=(lambda w: {"since": "2026-01-01T00:00:00Z"}) if tail == "/replay" else None)


def _admin_only(path: str, method: str) -> Case:
    url = path.replace("{override_id}", "1").replace("{rule_id}", "1")
    body = {"urgency": "high", "respond_within": 1, "complete_within": 2} if method == "PUT" else None
    return Case(lambda w: [url], body=(lambda w: body) if body else None)


def _dead_letter(tail: str) -> Case:
    return Case(lambda w: [f"/api/v1/dead-letters/1{tail}"],
                body=(lambda w: {"reason": "bukan urusan saya"}) if tail == "/discard" else None)


HH = "/api/v1/households/{household_id}"


MEASUREMENTS = HH + "/members/{member_id}/measurements"
DOSES = HH + "/members/{member_id}/immunizations"


def _programme(method: str, tail: str) -> Case:
    """A route of site A's programme: read by the agencies of its field and its region's pembina and kader, written
    by its own agency only."""
    bodies: dict[str, Any] = {"PATCH": {"name": "Program lain"}, "PUT": {}}
    return Case(lambda w: [f"/api/v1/programmes/{w.programme_id}{tail.replace('{month}', '2027-01')}"],
                insider=(lambda w: w.a.opd()) if method == "GET" else None,
                body=(lambda w: bodies[method]) if method in bodies else None)


CASES: dict[str, Case] = {
    **{f"registry {method} /api/v1/programmes/{{programme_id}}{tail}": _programme(method, tail)
       for method, tail in (("GET", ""), ("PATCH", ""), ("GET", "/history"), ("GET", "/realisations"),
                            ("PUT", "/realisations/{month}"))},
    # registry: regions, posyandu and agencies are the public directory every role works with.
    "registry GET /api/v1/regions/{code}": Case(lambda w: ["/api/v1/regions/3172011001"],
                                               public="the official region list is public reference data"),
    "registry GET /api/v1/regions/{code}/children": Case(lambda w: ["/api/v1/regions/3172"],
                                                         public="the official region list is public reference data"),
    "registry GET /api/v1/posyandu/{posyandu_id}": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}"],
        public="the posyandu directory (name, village, service days) holds no personal data"),
    "registry PATCH /api/v1/posyandu/{posyandu_id}": Case(lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}"],
                                                         body=lambda w: {"name": "Posyandu Diambil Alih"}),
    "registry POST /api/v1/posyandu/{posyandu_id}/deactivate": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/deactivate"]),
    "registry POST /api/v1/posyandu/{posyandu_id}/cadres": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/cadres"],
        body=lambda w: {"name": "Kader Penyusup", "duties": ["sosial"]}),
    "registry GET /api/v1/posyandu/{posyandu_id}/cadres": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/cadres"], insider=lambda w: w.a.kader()),
    "registry PATCH /api/v1/posyandu/{posyandu_id}/cadres/{cadre_id}": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/cadres/{w.a.cadre_id}"],
        body=lambda w: {"phone": "089999999999"}),
    "registry DELETE /api/v1/posyandu/{posyandu_id}/cadres/{cadre_id}": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/cadres/{w.a.cadre_id}"]),
    "registry GET /api/v1/posyandu/{posyandu_id}/schedule": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/schedule"],
        public="a posyandu's opening days (rule, dates, reasons) are public notice, with no personal data"),
    "registry GET /api/v1/posyandu/{posyandu_id}/opening-days": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/opening-days?from=2027-01-01"],
        public="a posyandu's opening days are public notice, with no personal data"),
    "registry PUT /api/v1/posyandu/{posyandu_id}/schedule": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/schedule"], body=lambda w: {"rule": None}),
    "registry GET /api/v1/agencies/{agency_id}": Case(
        lambda w: [f"/api/v1/agencies/{w.a.agency_id}"],
        public="the agency directory (name, jurisdiction, fields, office contact) is public"),
    "registry PATCH /api/v1/agencies/{agency_id}": Case(lambda w: [f"/api/v1/agencies/{w.a.agency_id}"],
                                                       body=lambda w: {"spm_fields": ["sosial", "kesehatan"]}),
    "registry POST /api/v1/agencies/{agency_id}/deactivate": Case(
        lambda w: [f"/api/v1/agencies/{w.a.agency_id}/deactivate"]),
    # household
    f"household GET {HH}": Case(lambda w: [f"/api/v1/households/{w.a.household_id}"],
                                insider=lambda w: w.a.kader()),
    f"household PATCH {HH}": Case(lambda w: [f"/api/v1/households/{w.a.household_id}"],
                                  body=lambda w: {"address": "Jl. Penyusup 1"}),
    f"household POST {HH}/move": Case(lambda w: [f"/api/v1/households/{w.a.household_id}/move"],
                                      body=lambda w: {"posyandu_id": w.b.posyandu_id}),
    f"household POST {HH}/members": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members"],
        body=lambda w: {"name": "Anak Titipan", "sex": "female", "birth_date": "2024-01-05",
                        "relationship": "other"}),
    f"household PATCH {HH}/members/{{member_id}}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}"],
        body=lambda w: {"name": "Nama Palsu"}),
    # Life events: valid bodies, so that only access can refuse them (B's household is the other site's).
    f"household POST {HH}/members/{{member_id}}/death": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/death"],
        body=lambda w: {"date_of_death": "2026-11-01"}),
    f"household POST {HH}/members/{{member_id}}/move-out": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/move-out"],
        body=lambda w: {"moved_out_on": "2026-11-01"}),
    f"household POST {HH}/members/{{member_id}}/move": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/move"],
        body=lambda w: {"to_household_id": w.b.household_id, "moved_on": "2026-11-01", "reason": "marriage"}),
    f"household POST {HH}/split": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/split"],
        body=lambda w: {"kk_number": "3171011405190099", "member_ids": [w.a.member_id], "moved_on": "2026-11-01"}),
    f"household POST {HH}/merge": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/merge"],
        body=lambda w: {"into_household_id": w.b.household_id, "merged_on": "2026-11-01"}),
    f"household POST {HH}/close": Case(lambda w: [f"/api/v1/households/{w.a.household_id}/close"],
                                       body=lambda w: {"closed_on": "2026-11-01"}),
    f"household GET {HH}/life-events": Case(lambda w: [f"/api/v1/households/{w.a.household_id}/life-events"],
                                            insider=lambda w: w.a.kader()),
    f"household GET {HH}/access-log": Case(lambda w: [f"/api/v1/households/{w.a.household_id}/access-log"],
                                           insider=lambda w: w.a.kader()),
    f"household GET {HH}/access-log/report": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/access-log/report"], insider=lambda w: w.a.kader()),
    f"household PUT {HH}/profiles/{{field}}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/profiles/kesehatan"], body=lambda w: {}),
    f"household GET {HH}/profiles/{{field}}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/profiles/kesehatan"], insider=lambda w: w.a.kader()),
    f"household GET {HH}/profiles/{{field}}/history": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/profiles/kesehatan/history"],
        insider=lambda w: w.a.kader()),
    f"household GET {HH}/needs": Case(lambda w: [f"/api/v1/households/{w.a.household_id}/needs"],
                                      insider=lambda w: w.a.kader()),
    f"household POST {MEASUREMENTS}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/measurements"],
        body=lambda w: {"measured_on": "2026-01-05", "weight_kg": 50.0}),
    f"household GET {MEASUREMENTS}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/measurements"],
        insider=lambda w: w.a.kader()),
    f"household GET {HH}/members/{{member_id}}/visits": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/visits"],
        insider=lambda w: w.a.kader()),
    "household GET /api/v1/sessions/{session_id}": Case(lambda w: [f"/api/v1/sessions/{w.session_id}"],
                                                        insider=lambda w: w.a.kader()),
    "household POST /api/v1/sessions/{session_id}/close": Case(lambda w: [f"/api/v1/sessions/{w.session_id}/close"]),
    "household GET /api/v1/sessions/{session_id}/visits": Case(
        lambda w: [f"/api/v1/sessions/{w.session_id}/visits"], insider=lambda w: w.a.kader()),
    "household POST /api/v1/sessions/{session_id}/visits": Case(
        lambda w: [f"/api/v1/sessions/{w.session_id}/visits"],
        body=lambda w: {"member_id": w.a.member_id, "counselling": ["nutrition"]}),
    f"household POST {DOSES}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations"],
        body=lambda w: {"vaccine": "bcg", "dose_number": 1, "given_on": "2026-01-05", "place": "posyandu"}),
    f"household GET {DOSES}": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations"],
        insider=lambda w: w.a.kader()),
    f"household GET {DOSES}/status": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations/status"],
        insider=lambda w: w.a.kader()),
    f"household POST {DOSES}/{{dose_id}}/void": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/immunizations/"
                   "00000000-0000-0000-0000-000000000001/void"], body=lambda w: {"reason": "bukan wewenang"}),
    f"household GET {HH}/members/{{member_id}}/fhir": Case(
        lambda w: [f"/api/v1/households/{w.a.household_id}/members/{w.a.member_id}/fhir"],
        insider=lambda w: w.a.kader()),
    "household GET /api/v1/posyandu/{posyandu_id}/due": Case(
        lambda w: [f"/api/v1/posyandu/{w.a.posyandu_id}/due", f"/api/v1/posyandu/{w.a.posyandu_id}/due?format=csv"],
        insider=lambda w: w.a.kader()),
    "household GET /api/v1/imports/{id}": Case(lambda w: [f"/api/v1/imports/{w.import_job_id}"],
                                               insider=lambda w: w.a.kader()),
    "household POST /api/v1/duplicates/{flag_id}/merge": Case(
        lambda w: [f"/api/v1/duplicates/{w.flag_id}/merge"], body=lambda w: {"survivor_id": w.a.member_id}),
    "household POST /api/v1/duplicates/{flag_id}/dismiss": Case(lambda w: [f"/api/v1/duplicates/{w.flag_id}/dismiss"]),
    # Programme beneficiary lists: the programme's agency (in the programme's field) or an admin.
    "household GET /api/v1/programmes/{programme_id}/beneficiaries": Case(
        lambda w: [f"/api/v1/programmes/{w.programme_id}/beneficiaries"], insider=lambda w: w.a.opd()),
    "household POST /api/v1/programmes/{programme_id}/beneficiaries": Case(
        lambda w: [f"/api/v1/programmes/{w.programme_id}/beneficiaries"]),
    "household POST /api/v1/programmes/{programme_id}/beneficiaries/{row_id}/review": Case(
        lambda w: [f"/api/v1/programmes/{w.programme_id}/beneficiaries/00000000-0000-0000-0000-000000000001/review"],
        body=lambda w: {"decision": "confirm"}),
    # referral
    "referral GET /api/v1/referrals/{referral_id}": Case(lambda w: [f"/api/v1/referrals/{w.a.referral_id}"],
                                                         insider=lambda w: w.a.opd()),
    "referral GET /api/v1/referrals/{referral_id}/history": Case(
        lambda w: [f"/api/v1/referrals/{w.a.referral_id}/history"], insider=lambda w: w.a.kader()),
    "referral POST /api/v1/referrals/{referral_id}/{action}": Case(
        lambda w: [f"/api/v1/referrals/{w.a.referral_id}/{action}" for action in ("accept", "cancel", "reassign")],
        body=lambda w: {"reason": "bukan wewenang"}),
    "referral POST /api/v1/referrals/{referral_id}/notes": Case(
        lambda w: [f"/api/v1/referrals/{w.a.referral_id}/notes"], body=lambda w: {"text": "catatan penyusup"}),
    "referral GET /api/v1/referrals/{referral_id}/notes": Case(
        lambda w: [f"/api/v1/referrals/{w.a.referral_id}/notes"], insider=lambda w: w.a.opd()),
    "referral GET /api/v1/agencies/{agency_id}/referrals": Case(
        lambda w: [f"/api/v1/agencies/{w.a.agency_id}/referrals"], insider=lambda w: w.a.opd(),
        hidden_in=lambda w: w.a.referral_id),
    # Webhooks: an agency's own (its token of the subscription's fields) or an admin's.
    **{f"referral {method} /api/v1/webhooks/subscriptions/{{subscription_id}}{tail}": _webhook(method, tail)
       for method, tail in (("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret"), ("POST", "/enable"),
                            ("GET", "/deliveries"), ("POST", "/replay"))},
    # SLA and routing configuration: admin only, so every other role is refused whichever object the id names.
    **{f"referral {method} {path}": _admin_only(path, method)
       for path in ("/api/v1/sla/overrides/{override_id}", "/api/v1/routing-rules/{rule_id}")
       for method in ("GET", "PUT", "DELETE")},
    # Dead letters: admin only in every consuming service, so every other role is refused whichever record it names.
    **{f"{service} {method} /api/v1/dead-letters/{{dead_letter_id}}{tail}": _dead_letter(tail)
       for service in ("household", "referral")
       for method, tail in (("GET", ""), ("POST", "/replay"), ("POST", "/discard"))},
}


def test_every_route_with_an_id_is_covered() -> None:
    missing = routes_with_ids() - set(CASES)
    assert not missing, f"routes with an id and no object-level access case: {sorted(missing)}"
    assert not set(CASES) - routes_with_ids(), "cases of routes that no longer exist"


@pytest.mark.parametrize("route", sorted(CASES))
async def test_outsiders_cannot_reach_another_sites_object(route: str, security_world: W,
                                                           registry: httpx.AsyncClient,
                                                           household: httpx.AsyncClient,
                                                           referral: httpx.AsyncClient) -> None:
    service, method, _ = route.split(" ", 2)
    case = CASES[route]
    client = {"registry": registry, "household": household, "referral": referral}[service]
    if case.public:
        for path in case.paths(security_world):
            response = await client.request(method, path, headers=tokens.kader([]))
            assert response.status_code == 200, response.text
        return
    before = await site_a_state(security_world, registry, household, referral)
    body = case.body(security_world) if case.body else None
    for name, headers in outsiders_of(security_world).items():
        if name in case.exempt:
            continue
        for path in case.paths(security_world):
            response = await client.request(method, path, headers=headers, json=body)
            if case.hidden_in is not None and response.status_code == 200:
                assert case.hidden_in(security_world) not in response.text, (name, path)
                continue
            assert response.status_code in (403, 404), (name, method, path, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert await site_a_state(security_world, registry, household, referral) == before
    if case.insider is not None:
        for path in case.paths(security_world):
            response = await client.request(method, path, headers=case.insider(security_world))
            assert 200 <= response.status_code < 300, (path, response.text)
