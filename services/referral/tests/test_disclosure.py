"""Which fields of a referral each caller sees, in every view that renders referral data.

The spec is the table below (SEES): the two sides of a referral (its posyandu side, admins included, and its
assigned agency) see its free text and the need's evidence; the assigned agency also the member's NIK and name;
a pembina of the region reads the referral without them; everyone else gets nothing. Every GET route of the
referral app is either in VIEWS (called by every role below on a real referral that has each private field
filled in) or in NOT_REFERRAL_DATA with the reason, so a new view fails `test_every_get_route_is_classified`
until it is checked here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from services.referral.app import create_app
from services.referral.referrals.disclosure import Disclosure
from services.referral.tables import Referral
from services.referral.tests.factories import (
    PISANGAN_BARU,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from shared.auth import Principal, Role
from shared.events.topics import SpmField
from tests.support import tokens
from tests.support.documents import api_routes
from tests.support.waiting import eventually

FIELD = "kesehatan"
#: The response keys that hold what only some may see (`text`: a note's).
PRIVATE = ("reason", "outcome", "evidence", "text", "member_details")
SIDE = {"reason", "outcome", "evidence", "text"}
#: role -> the private fields it sees; None: it may not see the referral at all.
SEES: dict[str, set[str] | None] = {
    "admin": SIDE,
    "kader of the posyandu": SIDE,
    "assigned agency": SIDE | {"member_details"},
    "pembina of the region": set(),
    "kader of another posyandu": None,
    "another agency": None,
    "pembina of another region": None,
}


@dataclass(frozen=True)
class World:
    """One posyandu in Pisangan Baru (3175) whose household has two referrals to one kesehatan agency: `need`, from
    a detected need (evidence, one member), accepted, with notes both ways; `done`, by hand for the household,
    completed with an outcome."""

    posyandu_id: str
    agency_id: str
    need: str
    done: str

    def caller(self, role: str) -> dict[str, str]:
        return {
            "admin": tokens.admin(),
            "kader of the posyandu": tokens.kader([self.posyandu_id]),
            "assigned agency": tokens.opd(self.agency_id, [FIELD]),
            "pembina of the region": tokens.pembina("3175"),
            "kader of another posyandu": tokens.kader([uuid.uuid4()]),
            "another agency": tokens.opd(uuid.uuid4(), [FIELD]),
            "pembina of another region": tokens.pembina("3171"),
        }[role]


@dataclass(frozen=True)
class View:
    paths: Callable[[World], list[str]]
    #: The private fields this view renders.
    carries: frozenset[str]
    #: A list answers outsiders with a 200 that leaves the referrals out.
    listing: bool = False
    #: Roles that may not use the view at all even though they may see the referral.
    not_for: frozenset[str] = frozenset()


REFERRAL = frozenset({"reason", "outcome", "evidence"})
VIEWS: dict[str, View] = {
    "/api/v1/referrals": View(lambda w: [f"/api/v1/referrals?posyandu={w.posyandu_id}&limit=500"], REFERRAL,
                              listing=True),
    "/api/v1/agencies/{agency_id}/referrals": View(
        lambda w: [f"/api/v1/agencies/{w.agency_id}/referrals?limit=500"], REFERRAL, listing=True,
        not_for=frozenset({"kader of the posyandu", "pembina of the region"})),
    "/api/v1/referrals/{referral_id}": View(lambda w: [f"/api/v1/referrals/{w.need}", f"/api/v1/referrals/{w.done}"],
                                            REFERRAL | {"member_details"}),
    "/api/v1/referrals/{referral_id}/history": View(
        lambda w: [f"/api/v1/referrals/{w.need}/history", f"/api/v1/referrals/{w.done}/history"],
        frozenset({"reason", "outcome"})),
    "/api/v1/referrals/{referral_id}/notes": View(lambda w: [f"/api/v1/referrals/{w.need}/notes"],
                                                  frozenset({"text"})),
}
NOT_REFERRAL_DATA = {
    "/api/v1/audit-log": "the audit trail (admin only): who read which referral, never the referral's fields",
    **{path: "SLA and routing configuration (admin only): no referral's fields"
       for path in ("/api/v1/sla/overrides", "/api/v1/sla/overrides/{override_id}", "/api/v1/sla/escalation-delays",
                    "/api/v1/sla/holiday-calendars", "/api/v1/sla/holiday-calendars/{year}",
                    "/api/v1/routing-rules", "/api/v1/routing-rules/{rule_id}")},
    **{path: "webhook configuration and its delivery log (ids, times, HTTP results): no referral's fields; the "
             "bodies sent go through disclosure.py (webhooks/service.py)"
       for path in ("/api/v1/webhooks/subscriptions", "/api/v1/webhooks/subscriptions/{subscription_id}",
                    "/api/v1/webhooks/subscriptions/{subscription_id}/deliveries")},
    **{path: "dead letters of the referral's consumer (admin only), which reads the registry and household topics: "
             "a household or registry event, never a referral's fields; reading a body is audited"
       for path in ("/api/v1/dead-letters", "/api/v1/dead-letters/{dead_letter_id}")},
}


def test_every_get_route_is_classified() -> None:
    gets = {route.path for route in api_routes(create_app().routes)
            if "GET" in (route.methods or ()) and route.path.startswith("/api/")}
    assert gets == set(VIEWS) | set(NOT_REFERRAL_DATA)


def _values(body: Any, key: str) -> list[Any]:
    """Every value of `key` anywhere in a JSON body."""
    if isinstance(body, dict):
        return ([body[key]] if key in body else []) + [v for value in body.values() for v in _values(value, key)]
    if isinstance(body, list):
        return [v for item in body for v in _values(item, key)]
    return []


@pytest.fixture(scope="module")
async def world(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                household_settings: Any, referral_settings: Any) -> World:
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        await known_agency(registry, referral_db, "3175", [FIELD])
        place = await known_posyandu(registry, household_db, PISANGAN_BARU)
        created = await known_household(household, referral_db, place, PISANGAN_BARU)
        kader = tokens.kader([place])
        head = created["members"][0]["id"]
        profile = await household.put(f"/api/v1/households/{created['id']}/profiles/kesehatan",
                                      json={"members": {head: {"long_cough": True}}}, headers=kader)
        assert profile.status_code == 201, profile.text

        async def from_the_need() -> asyncpg.Record | None:
            return await referral_db.fetchrow("SELECT id, agency_id FROM referrals WHERE household_id = $1 "
                                              "AND origin = 'need'", uuid.UUID(created["id"]))

        need = await eventually(from_the_need, "the referral of the detected need")
        need_id, agency_id = str(need["id"]), str(need["agency_id"])
        opd = tokens.opd(agency_id, [FIELD])
        base = f"/api/v1/referrals/{need_id}"
        assert (await referral.post(f"{base}/accept", headers=opd)).status_code == 200
        for author in (kader, opd):
            note = await referral.post(f"{base}/notes", json={"text": "Mohon kunjungan rumah"}, headers=author)
            assert note.status_code == 201, note.text

        done = await create_referral(referral, created, spm_field=FIELD, category="kesehatan.tb-suspect",
                                     member=False)
        assert done["agency_id"] == agency_id
        for action, body in (("accept", None), ("start", None), ("complete", {"outcome": "Diperiksa, negatif"})):
            moved = await referral.post(f"/api/v1/referrals/{done['id']}/{action}", json=body, headers=opd)
            assert moved.status_code == 200, moved.text

        async def agency_may_read_the_household() -> bool:
            return bool(await household_db.fetchval(
                "SELECT count(*) FROM agency_access WHERE referral_id = $1 AND open", uuid.UUID(need_id)))

        await eventually(agency_may_read_the_household, "the household service to learn the referral")
    finally:
        await household_db.close()
        await referral_db.close()
    return World(posyandu_id=place, agency_id=agency_id, need=need_id, done=done["id"])


@pytest.mark.parametrize("role", sorted(SEES))
@pytest.mark.parametrize("route", sorted(VIEWS))
async def test_each_view_shows_each_role_the_same_fields(route: str, role: str, world: World,
                                                         referral: httpx.AsyncClient) -> None:
    view, sees = VIEWS[route], SEES[role]
    for path in view.paths(world):
        response = await referral.get(path, headers=world.caller(role))
        if sees is None or role in view.not_for:
            if view.listing and response.status_code == 200:
                assert world.need not in response.text and world.done not in response.text, path
            else:
                assert response.status_code == 404, (path, response.status_code, response.text)
            continue
        assert response.status_code == 200, (path, response.text)
        if view.listing:
            assert {world.need, world.done} <= {r["id"] for r in response.json()["items"]}
    if sees is None or role in view.not_for:
        return
    bodies = [(await referral.get(path, headers=world.caller(role))).json() for path in view.paths(world)]
    for key in PRIVATE:
        values = _values(bodies, key)
        if key in sees and key in view.carries:
            # Filled in the world: the role sees it at least once (so a null elsewhere is the data's, not a rule's).
            assert any(v is not None for v in values), (key, values)
        else:
            assert all(v is None for v in values), (key, values)


def _referral(**overrides: Any) -> Referral:
    values: dict[str, Any] = {"household_id": uuid.uuid4(), "posyandu_id": uuid.uuid4(), "village_code": PISANGAN_BARU,
                              "spm_field": FIELD, "category": "kesehatan.tb-suspect", "urgency": "high",
                              "origin": "manual", "status": "requested", "agency_id": uuid.uuid4(),
                              "created_by": "kader-test"}
    return Referral(**{**values, **overrides})


def test_the_rule_per_principal() -> None:
    r = _referral()
    assert r.agency_id is not None
    cases = {
        Principal(sub="a", role=Role.ADMIN): (True, False),
        Principal(sub="k", role=Role.KADER, posyandu_ids=frozenset({r.posyandu_id})): (True, False),
        Principal(sub="o", role=Role.OPD, agency_id=r.agency_id, fields=frozenset({SpmField.KESEHATAN})): (True, True),
        # The assigned agency with a token for another field is no side of it.
        Principal(sub="o", role=Role.OPD, agency_id=r.agency_id, fields=frozenset({SpmField.SOSIAL})): (False, False),
        Principal(sub="p", role=Role.PEMBINA, region_prefix="3175"): (False, False),
        Principal(sub="s", role=Role.SERVICE): (False, False),
    }
    for principal, (free_text, member_details) in cases.items():
        disclosure = Disclosure.of(principal, r)
        assert (disclosure.free_text, disclosure.member_details) == (free_text, member_details), principal
