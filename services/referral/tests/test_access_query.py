"""One access rule per aggregate, written once as a query: for every kind of caller, the single read (and the
routes of one referral: its history, notes and lifecycle actions) finds exactly the referrals the lists and the
inbox show, and those are the ones the rule names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.referrals.access import readable_referral, readable_referrals
from services.referral.tests import kerinci
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.events.topics import SpmField
from tests.support import tokens


@dataclass(frozen=True)
class Place:
    agency_a: uuid.UUID
    agency_b: uuid.UUID
    #: A second Kerinci agency of the field, registered later (never routed to: the target of a reassignment).
    agency_a2: uuid.UUID
    home_1: kerinci.Home
    home_2: kerinci.Home
    #: Kerinci kesehatan (agency A), Merangin kesehatan (agency B), Kerinci sosial (unrouted).
    r1: str
    r2: str
    r3: str


_place: list[Place] = []


@pytest.fixture
async def place(referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> Place:
    if not _place:
        a = await kerinci.agency(referral_db, "Dinkes Kerinci", "1501", ["kesehatan"])
        b = await kerinci.agency(referral_db, "Dinkes Merangin", "1502", ["kesehatan"])
        a2 = await kerinci.agency(referral_db, "Puskesmas Kerinci", "1501", ["kesehatan"])
        one, two = await kerinci.home(referral_db, kerinci.KERINCI), await kerinci.home(referral_db, kerinci.MERANGIN)

        async def made(home: kerinci.Home, **body: Any) -> str:
            response = await referral.post("/api/v1/referrals", json=kerinci.referral_body(home, **body),
                                           headers=tokens.kader([home.posyandu_id]))
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        r1, r2 = await made(one), await made(two)
        r3 = await made(one, spm_field="sosial", category="sosial.homeless")
        _place.append(Place(a, b, a2, one, two, r1, r2, r3))
    return _place[0]


def callers(p: Place) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Each caller, with the referrals the rule lets it read."""
    every = {p.r1, p.r2, p.r3}
    return {
        "admin": (tokens.admin(), every),
        "kader of the Kerinci posyandu": (tokens.kader([p.home_1.posyandu_id]), {p.r1, p.r3}),
        "kader of the Merangin posyandu": (tokens.kader([p.home_2.posyandu_id]), {p.r2}),
        "pembina of Kerinci": (tokens.pembina("1501"), {p.r1, p.r3}),
        "pembina of Merangin": (tokens.pembina("1502"), {p.r2}),
        "pembina of Jambi": (tokens.pembina("15"), every),
        "pembina of Riau": (tokens.pembina("14"), set()),
        "agency A": (tokens.opd(p.agency_a, ["kesehatan"]), {p.r1}),
        "agency A, a token of another field": (tokens.opd(p.agency_a, ["sosial"]), set()),
        "agency B": (tokens.opd(p.agency_b, ["kesehatan"]), {p.r2}),
        "a service token": (tokens.service(), set()),
    }


CALLERS = ("admin", "kader of the Kerinci posyandu", "kader of the Merangin posyandu", "pembina of Kerinci",
           "pembina of Merangin", "pembina of Jambi", "pembina of Riau", "agency A",
           "agency A, a token of another field", "agency B", "a service token")


def test_every_kind_of_caller_is_checked() -> None:
    home = kerinci.Home(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), kerinci.KERINCI)
    p = Place(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), home, home, "1", "2", "3")
    assert set(callers(p)) == set(CALLERS)


@pytest.mark.parametrize("who", CALLERS)
async def test_the_single_read_and_the_list_show_the_same_referrals(who: str, place: Place,
                                                                    referral: httpx.AsyncClient) -> None:
    headers, readable = callers(place)[who]
    mine = {place.r1, place.r2, place.r3}
    listed = await referral.get("/api/v1/referrals?region=15&limit=500", headers=headers)
    assert listed.status_code == 200, listed.text
    assert {r["id"] for r in listed.json()["items"]} & mine == readable
    for referral_id in sorted(mine):
        for tail in ("", "/history", "/notes"):
            response = await referral.get(f"/api/v1/referrals/{referral_id}{tail}", headers=headers)
            assert response.status_code == (200 if referral_id in readable else 404), (tail, response.text)
        if referral_id not in readable:  # a change is refused as "not found" too, before anything else
            refused = await referral.post(f"/api/v1/referrals/{referral_id}/cancel", headers=headers,
                                          json={"reason": "bukan wewenang"})
            assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"


async def test_the_inbox_shows_the_agencys_readable_referrals_to_itself_and_an_admin_only(
        place: Place, referral: httpx.AsyncClient) -> None:
    url = f"/api/v1/agencies/{place.agency_a}/referrals?limit=500"
    mine = {place.r1, place.r2, place.r3}
    for headers in (tokens.opd(place.agency_a, ["kesehatan"]), tokens.admin()):
        inbox = await referral.get(url, headers=headers)
        assert inbox.status_code == 200, inbox.text
        assert {r["id"] for r in inbox.json()["items"]} & mine == {place.r1}
    # Its own inbox with a token of another field: the inbox is its own, its referrals of that field none.
    assert (await referral.get(url, headers=tokens.opd(place.agency_a, ["sosial"]))).json()["items"] == []
    for headers in (tokens.opd(place.agency_b, ["kesehatan"]), tokens.pembina("15"),
                    tokens.kader([place.home_1.posyandu_id])):
        refused = await referral.get(url, headers=headers)
        assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"


def test_the_rule_is_one_query_restricted_per_role() -> None:
    assert readable_referrals(Principal(sub="a", role=Role.ADMIN)).whereclause is None
    opd = Principal(sub="o", role=Role.OPD, agency_id=uuid.uuid4(), fields=frozenset({SpmField.KESEHATAN}))
    assert readable_referrals(opd).whereclause is not None
    # A role the rule does not know reads nothing.
    assert "false" in str(readable_referrals(Principal(sub="s", role=Role.SERVICE)).whereclause).lower()


async def test_a_lifecycle_action_locks_the_row_it_reads_through_the_rule(
        place: Place, referral_db: asyncpg.Connection, referral_session: AsyncSession) -> None:
    agency_b = Principal(sub="o", role=Role.OPD, agency_id=place.agency_b, fields=frozenset({SpmField.KESEHATAN}))
    with pytest.raises(NotFound):
        await readable_referral(referral_session, agency_b, uuid.UUID(place.r1), for_update=True)
    locked = await readable_referral(referral_session, agency_b, uuid.UUID(place.r2), for_update=True)
    assert str(locked.id) == place.r2
    # Another transaction cannot take the row while the test's holds it (until the test's rollback).
    assert await referral_db.fetch("SELECT id FROM referrals WHERE id = $1 FOR UPDATE SKIP LOCKED", locked.id) == []
    assert await referral_db.fetch("SELECT id FROM referrals WHERE id = $1 FOR UPDATE SKIP LOCKED",
                                   uuid.UUID(place.r1)) != []


async def test_an_agency_that_reassigns_a_referral_away_sees_the_answer_as_a_non_side(
        place: Place, referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> None:
    home = await kerinci.home(referral_db, kerinci.KERINCI)
    made = await referral.post("/api/v1/referrals", json=kerinci.referral_body(home, reason="Demam tinggi"),
                               headers=tokens.kader([home.posyandu_id]))
    assert made.status_code == 201 and made.json()["agency_id"] == str(place.agency_a), made.text
    url = f"/api/v1/referrals/{made.json()['id']}"
    agency_a = tokens.opd(place.agency_a, ["kesehatan"])
    moved = await referral.post(f"{url}/reassign", headers=agency_a,
                                json={"agency_id": str(place.agency_a2), "reason": "Wilayah puskesmas lain"})
    assert moved.status_code == 200, moved.text
    # The answer shows the referral as agency A may see it now: no longer a side of it, so without its free text.
    assert moved.json()["agency_id"] == str(place.agency_a2) and moved.json()["reason"] is None
    assert (await referral.get(url, headers=agency_a)).status_code == 404
    kept = await referral.get(url, headers=tokens.opd(place.agency_a2, ["kesehatan"]))
    assert kept.status_code == 200 and kept.json()["reason"] == "Demam tinggi"
