"""The verdicts published with a profile version (ProfileUpdatedData.decided) are the need rules' own, with their
configuration: reporting counts them instead of repeating the rules (issue 13)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
import httpx

from conftest import Stack
from services.household.needs.config import DEFAULT_CONFIG
from services.household.profiles.decisions import decided
from services.household.tests.factories import known_posyandu, register
from shared.events.household import ProfileDecisions
from shared.events.topics import SpmField
from tests.support import tokens
from tests.support.kafka import Received, events_about, read_topic

TOPIC = "posyandu.household.v1"


def test_the_verdicts_follow_the_rules_configuration() -> None:
    crowded = {"household": {"floor_area_m2": 30, "occupants": 5, "floor": "ceramic-or-cement"}}  # 6 m² each
    assert decided(SpmField.PERUMAHAN_RAKYAT, crowded) == ProfileDecisions(rtlh=True)
    roomier = replace(DEFAULT_CONFIG, rtlh_min_area_per_occupant_m2=5.0)
    assert decided(SpmField.PERUMAHAN_RAKYAT, crowded, roomier) == ProfileDecisions(rtlh=False)
    assert decided(SpmField.PERUMAHAN_RAKYAT, {"household": {"floor": "earth"}}) == ProfileDecisions(rtlh=True)
    assert decided(SpmField.PERUMAHAN_RAKYAT, {}) == ProfileDecisions(rtlh=False)

    assert decided(SpmField.PEKERJAAN_UMUM, {"household": {"drinking_water_source": "piped"}}) == \
        ProfileDecisions(safe_water=True)
    assert decided(SpmField.PEKERJAAN_UMUM, {"household": {"drinking_water_source": "surface-water"}}) == \
        ProfileDecisions(safe_water=False)
    assert decided(SpmField.PEKERJAAN_UMUM, {"household": {"toilet": "none"}}) == ProfileDecisions()
    piped_unsafe = replace(DEFAULT_CONFIG, unsafe_water_sources=frozenset({"piped"}))
    assert decided(SpmField.PEKERJAAN_UMUM, {"household": {"drinking_water_source": "piped"}}, piped_unsafe) == \
        ProfileDecisions(safe_water=False)

    assert decided(SpmField.SOSIAL, {"household": {"dtsen_decile": 4}}) == ProfileDecisions(low_decile=True)
    assert decided(SpmField.SOSIAL, {"household": {"dtsen_decile": 5}}) == ProfileDecisions(low_decile=False)
    assert decided(SpmField.SOSIAL, {"household": {"dtsen_decile": 5}},
                   replace(DEFAULT_CONFIG, reported_low_decile_max=5)) == ProfileDecisions(low_decile=True)
    assert decided(SpmField.SOSIAL, {"members": {}}) == ProfileDecisions(low_decile=None)
    # No rule of this kind: nothing decided; a section that no longer validates: nothing either.
    assert decided(SpmField.KESEHATAN, {"members": {}}) is None
    assert decided(SpmField.SOSIAL, {"household": {"dtsen_decile": 42}}) is None


async def test_the_profile_event_carries_the_verdicts(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                      household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    kader = tokens.kader([posyandu])
    for field, body in (("perumahan-rakyat", {"household": {"floor": "earth", "occupants": 2}}),
                        ("pekerjaan-umum", {"household": {"drinking_water_source": "protected-well"}}),
                        ("sosial", {"household": {"dtsen_decile": 2}})):
        response = await household.put(f"/api/v1/households/{created['id']}/profiles/{field}", json=body,
                                       headers=kader)
        assert response.status_code == 201, response.text

    def profiles(records: list[Received]) -> dict[str, dict[str, Any]]:
        return {e.data["spm_field"]: e.data for e in events_about(records, created["id"])
                if e.type == "posyandu.profile.updated.v1"}

    received = await read_topic(stack.broker.bootstrap_servers, TOPIC, timeout=30,
                                until=lambda rs: len(profiles(rs)) == 3)
    found = profiles(received)
    assert found["perumahan-rakyat"]["decided"] == {"rtlh": True, "safe_water": None, "low_decile": None}
    assert found["pekerjaan-umum"]["decided"] == {"rtlh": None, "safe_water": True, "low_decile": None}
    assert found["sosial"]["decided"] == {"rtlh": None, "safe_water": None, "low_decile": True}
