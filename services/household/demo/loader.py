"""Loads the demo households through the public APIs of a running registry and household service.

Idempotent: each household is registered with the fixed ``Idempotency-Key: demo-household-<n>``; its profiles (and
child measurements and vaccine doses) are written only when that registration really created it. A replayed registration
(``Idempotent-Replayed: true``) writes nothing, except the profiles an interrupted earlier load left out.

Then the sessions: at each demo posyandu with a schedule, its last opening days are opened, the planned visits
recorded (the children's weighings with them) and the session closed, each with a fixed Idempotency-Key, so a
second run replays them. A posyandu without a schedule has no sessions: its children's measurements are posted
directly, as before sessions existed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from services.household.demo.generator import (
    DEMO_POSYANDU_CODE,
    PROFILE_FIELDS,
    DemoPosyandu,
    HouseholdPlan,
    plan_households,
    session_dates,
)
from shared.events.topics import SpmField

MEASUREMENTS_PATH = "/api/v1/households/{household_id}/members/{member_id}/measurements"
DOSES_PATH = "/api/v1/households/{household_id}/members/{member_id}/immunizations"


@dataclass
class DemoSummary:
    #: Demo households present after the load (created now or earlier).
    households: int = 0
    created: int = 0
    replayed: int = 0
    #: Keys whose earlier household differs from today's plan (another reference date): left as they are.
    conflicts: int = 0
    members: int = 0
    profiles_written: int = 0
    measurements: int = 0
    #: Sessions held (opened, visited, closed; replayed ones too) and the visits recorded at them now.
    sessions: int = 0
    visits: int = 0
    doses: int = 0
    #: Why no measurements were written, when none were.
    measurements_skipped: str | None = None
    #: Open needs of the demo households by SPM field, and by category.
    needs: dict[str, int] = field(default_factory=lambda: {f.value: 0 for f in SpmField})
    categories: dict[str, int] = field(default_factory=dict)
    households_without_needs: int = 0
    #: Posyandu id -> demo households there.
    posyandu_households: dict[str, int] = field(default_factory=dict)
    household_ids: list[str] = field(default_factory=list)


class DemoLoadError(RuntimeError):
    pass


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise DemoLoadError(f"{response.request.method} {response.request.url}: {response.status_code} "
                            f"{response.text[:500]}")
    return response.json() if response.content else None


async def demo_posyandu(registry: httpx.AsyncClient, admin_token: str, region: str | None = None) -> list[DemoPosyandu]:
    """The active posyandu of the registry demo (codes ``P<village>-<nnn>``), by code."""
    found: list[DemoPosyandu] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, "status": "active"}
        if region:
            params["region"] = region
        if cursor:
            params["cursor"] = cursor
        page = _check(await registry.get("/api/v1/posyandu", params=params,
                                         headers={"Authorization": f"Bearer {admin_token}"}))
        for item in page["items"]:
            match = DEMO_POSYANDU_CODE.match(item["code"])
            if match and match.group(1) == item["village_code"]:
                found.append(DemoPosyandu(id=item["id"], code=item["code"], village_code=item["village_code"],
                                          name=item["name"]))
        cursor = page.get("next_cursor")
        if not cursor:
            return sorted(found, key=lambda p: p.code)


async def measurements_supported(household: httpx.AsyncClient) -> bool:
    """Whether the household service has the child-measurement route (it is being written separately)."""
    response = await household.get("/openapi.json")
    if response.status_code != 200:
        return False
    return "post" in response.json().get("paths", {}).get(MEASUREMENTS_PATH, {})


def _unknown_to_the_service(response: httpx.Response) -> bool:
    """A 422 because the household service has not yet heard of the posyandu or village from the registry."""
    if response.status_code != 422:
        return False
    with_errors = response.json().get("errors") or []
    return any(e.get("field") in ("posyandu_id", "village_code") for e in with_errors)


def _schedule_unknown(response: httpx.Response) -> bool:
    """A 422 because the household service has not yet learnt the posyandu or its schedule from the registry."""
    if response.status_code != 422:
        return False
    return any(e.get("field") in ("posyandu_id", "session_date") for e in response.json().get("errors") or [])


async def scheduled_posyandu(registry: httpx.AsyncClient, admin_token: str, posyandu: list[DemoPosyandu],
                             reference: date) -> set[str]:
    """The demo posyandu whose schedule (in the registry) opens on every demo session date."""
    dates = session_dates(reference)
    found = set()
    for p in posyandu:
        response = await registry.get(f"/api/v1/posyandu/{p.id}/opening-days",
                                      headers={"Authorization": f"Bearer {admin_token}"},
                                      params={"from": dates[0].isoformat(), "to": dates[-1].isoformat()})
        if response.status_code == 200 and set(dates) <= {date.fromisoformat(d["date"])
                                                          for d in response.json()["items"]}:
            found.add(p.id)
    return found


class _Loader:
    def __init__(self, household: httpx.AsyncClient, admin_token: str, reference: date, *, wait_seconds: float,
                 concurrency: int, with_measurements: bool, scheduled: set[str]) -> None:
        self.client = household
        self.auth = {"Authorization": f"Bearer {admin_token}"}
        self.reference = reference
        self.deadline = time.monotonic() + wait_seconds
        self.wait_seconds = wait_seconds
        self.limit = asyncio.Semaphore(concurrency)
        self.with_measurements = with_measurements
        self.summary = DemoSummary()
        #: The posyandu whose children are weighed at sessions, and the households loaded (plan, id, member ids).
        self.scheduled = scheduled
        self.loaded: list[tuple[HouseholdPlan, str, list[str]]] = []
        if not with_measurements:
            self.summary.measurements_skipped = "the household service has no measurements route yet"

    async def register(self, plan: HouseholdPlan) -> httpx.Response:
        """POST the household; while the service has not yet learnt its posyandu from the registry, wait (bounded)."""
        headers = {**self.auth, "Idempotency-Key": plan.idempotency_key}
        while True:
            response = await self.client.post("/api/v1/households", json=plan.body(), headers=headers)
            if not _unknown_to_the_service(response) or time.monotonic() > self.deadline:
                return response
            await asyncio.sleep(0.5)

    async def put_profile(self, household_id: str, plan: HouseholdPlan, spm_field: SpmField,
                          member_ids: list[str]) -> None:
        _check(await self.client.put(f"/api/v1/households/{household_id}/profiles/{spm_field.value}",
                                     json=plan.profile_body(spm_field, member_ids),
                                     params={"observed_on": self.reference.isoformat()}, headers=self.auth))
        self.summary.profiles_written += 1

    async def measure(self, household_id: str, plan: HouseholdPlan, member_ids: list[str]) -> None:
        for m in plan.measurements:
            if not self.with_measurements:
                return
            url = MEASUREMENTS_PATH.format(household_id=household_id, member_id=member_ids[m.member])
            response = await self.client.post(url, json=m.body(), headers={
                **self.auth, "Idempotency-Key": f"{plan.idempotency_key}-m{m.member}-{m.measured_on.isoformat()}"})
            if response.status_code in (404, 405):  # the route is not there (yet)
                self.with_measurements = False
                self.summary.measurements_skipped = f"the measurements route answered {response.status_code}"
                return
            _check(response)
            self.summary.measurements += 1

    async def vaccinate(self, household_id: str, plan: HouseholdPlan, member_ids: list[str]) -> None:
        """The children's doses, oldest first (a dose needs the one before it recorded)."""
        for d in plan.doses:
            url = DOSES_PATH.format(household_id=household_id, member_id=member_ids[d.member])
            _check(await self.client.post(url, json=d.body(), headers={
                **self.auth, "Idempotency-Key": f"{plan.idempotency_key}-d{d.member}-{d.vaccine}-{d.dose}"}))
            self.summary.doses += 1

    async def load_one(self, plan: HouseholdPlan) -> None:
        async with self.limit:
            response = await self.register(plan)
            if response.status_code == 409:
                self.summary.conflicts += 1
                return
            if _unknown_to_the_service(response):
                raise DemoLoadError(
                    f"the household service did not learn posyandu {plan.posyandu.code} (village "
                    f"{plan.posyandu.village_code}) from the registry's events within {self.wait_seconds:.0f}s: "
                    f"{response.json().get('detail')}")
            created = _check(response)
            household_id = created["id"]
            by_key = {(m["name"], m["birth_date"]): m["id"] for m in created["members"]}
            member_ids = [by_key[(m.name, m.birth_date.isoformat())] for m in plan.members]
            if response.headers.get("Idempotent-Replayed") != "true":
                self.summary.created += 1
                for spm_field in PROFILE_FIELDS:
                    await self.put_profile(household_id, plan, spm_field, member_ids)
                if plan.posyandu.id not in self.scheduled:
                    await self.measure(household_id, plan, member_ids)
                await self.vaccinate(household_id, plan, member_ids)
            else:
                self.summary.replayed += 1
                await self.complete_profiles(household_id, plan, member_ids)
            self.loaded.append((plan, household_id, member_ids))

    async def count_needs(self, plan: HouseholdPlan, household_id: str, member_ids: list[str]) -> None:
        async with self.limit:
            needs = _check(await self.client.get(f"/api/v1/households/{household_id}/needs", headers=self.auth))
        s = self.summary
        s.households += 1
        s.members += len(member_ids)
        s.household_ids.append(household_id)
        s.posyandu_households[plan.posyandu.id] = s.posyandu_households.get(plan.posyandu.id, 0) + 1
        s.households_without_needs += not needs
        for need in needs:
            s.needs[need["spm_field"]] = s.needs.get(need["spm_field"], 0) + 1
            s.categories[need["category"]] = s.categories.get(need["category"], 0) + 1

    async def open_session(self, posyandu: DemoPosyandu, on: date) -> dict[str, Any]:
        """Open (or replay the opening of) a session; while the service has not learnt the schedule, wait."""
        headers = {**self.auth, "Idempotency-Key": f"demo-session-{posyandu.code}-{on.isoformat()}"}
        while True:
            response = await self.client.post("/api/v1/sessions", headers=headers,
                                              json={"posyandu_id": posyandu.id, "session_date": on.isoformat()})
            if not _schedule_unknown(response):
                break
            if time.monotonic() > self.deadline:
                raise DemoLoadError(f"the household service did not learn the schedule of posyandu {posyandu.code} "
                                    f"from the registry's events within {self.wait_seconds:.0f}s")
            await asyncio.sleep(0.5)
        if response.status_code == 409:  # opened earlier under another key: take it as it is
            listed = _check(await self.client.get("/api/v1/sessions", headers=self.auth, params={
                "posyandu_id": posyandu.id, "from": on.isoformat(), "to": on.isoformat()}))
            return dict(listed["items"][0])
        return dict(_check(response))

    async def visit(self, session_id: str, plan: HouseholdPlan, member_ids: list[str], member: int, on: date,
                    services: dict[str, Any]) -> None:
        async with self.limit:
            response = await self.client.post(f"/api/v1/sessions/{session_id}/visits", headers={
                **self.auth, "Idempotency-Key": f"{plan.idempotency_key}-v{member}-{on.isoformat()}"},
                json={"member_id": member_ids[member], **services})
        if response.status_code == 409:  # the session closed in an earlier run before this visit: leave it
            self.summary.conflicts += 1
            return
        _check(response)
        if response.headers.get("Idempotent-Replayed") != "true":
            self.summary.visits += 1
            self.summary.measurements += "measurement" in services.get("child", {})

    async def hold_sessions(self) -> None:
        """At each scheduled posyandu, oldest first: open the session, record its visits, close it."""
        by_posyandu: dict[str, list[tuple[HouseholdPlan, str, list[str]]]] = {}
        for loaded in self.loaded:
            if loaded[0].posyandu.id in self.scheduled:
                by_posyandu.setdefault(loaded[0].posyandu.id, []).append(loaded)
        async with asyncio.TaskGroup() as posyandu_group:  # the posyandu side by side, each day after day
            for households in by_posyandu.values():
                posyandu_group.create_task(self.hold_sessions_at(households))

    async def hold_sessions_at(self, households: list[tuple[HouseholdPlan, str, list[str]]]) -> None:
        posyandu = households[0][0].posyandu
        for on in session_dates(self.reference):
            session = await self.open_session(posyandu, on)
            async with asyncio.TaskGroup() as group:
                for plan, _, member_ids in households:
                    for v in plan.visits:
                        if v.on == on:
                            group.create_task(self.visit(session["id"], plan, member_ids, v.member, on, v.services))
            _check(await self.client.post(f"/api/v1/sessions/{session['id']}/close", headers=self.auth))
            self.summary.sessions += 1

    async def complete_profiles(self, household_id: str, plan: HouseholdPlan, member_ids: list[str]) -> None:
        """After a replay: write the fields an interrupted earlier load did not reach (profiles go in field order)."""
        base = f"/api/v1/households/{household_id}/profiles"
        if (await self.client.get(f"{base}/{PROFILE_FIELDS[-1].value}", headers=self.auth)).status_code != 404:
            return
        for spm_field in PROFILE_FIELDS:
            if (await self.client.get(f"{base}/{spm_field.value}", headers=self.auth)).status_code == 404:
                await self.put_profile(household_id, plan, spm_field, member_ids)


async def load(household: httpx.AsyncClient, registry: httpx.AsyncClient, *, admin_token: str,
               households: int = 300, reference_date: date | None = None, region: str | None = None,
               wait_seconds: float = 120, concurrency: int = 8) -> DemoSummary:
    """Load ``households`` demo households at the registry demo's posyandu (optionally only those in ``region``).

    ``reference_date`` (default today) anchors every date of the plan (birth dates, delivery dates, measurements):
    pass the same one on later runs, or a replayed key meets another body (counted in ``conflicts``, left alone).
    Waits up to ``wait_seconds`` for the household service to learn the posyandu from the registry's events.
    """
    reference = reference_date or date.today()
    posyandu = await demo_posyandu(registry, admin_token, region)
    if not posyandu:
        raise DemoLoadError("the registry has no demo posyandu (codes P<village>-<nnn>): load the registry demo first")
    plans = plan_households(posyandu, households, reference)
    loader = _Loader(household, admin_token, reference, wait_seconds=wait_seconds, concurrency=concurrency,
                     with_measurements=await measurements_supported(household),
                     scheduled=await scheduled_posyandu(registry, admin_token, posyandu, reference))
    try:
        async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
            for plan in plans:
                group.create_task(loader.load_one(plan))
        await loader.hold_sessions()
        async with asyncio.TaskGroup() as group:
            for loaded in loader.loaded:
                group.create_task(loader.count_needs(*loaded))
    except ExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):  # task groups inside task groups: the first real failure
            first = first.exceptions[0]
        raise first if isinstance(first, Exception) else failed from None
    summary = loader.summary
    summary.needs = dict(sorted(summary.needs.items()))
    summary.categories = dict(sorted(summary.categories.items()))
    summary.household_ids.sort()
    return summary


def describe(summary: DemoSummary) -> str:
    """A short human summary, for `make run`."""
    fields = ", ".join(f"{name} {count}" for name, count in summary.needs.items())
    lines = [f"{summary.households} households ({summary.created} new, {summary.replayed} already there"
             + (f", {summary.conflicts} conflicting" if summary.conflicts else "")
             + f"), {summary.members} members, {summary.measurements} measurements, {summary.sessions} sessions "
             f"with {summary.visits} visits, {summary.doses} vaccine doses",
             f"open needs by field: {fields}; households without needs: {summary.households_without_needs}"]
    if summary.measurements_skipped:
        lines.append(f"measurements skipped: {summary.measurements_skipped}")
    return "\n".join(lines)


__all__ = ["DemoLoadError", "DemoSummary", "demo_posyandu", "describe", "load", "measurements_supported",
           "scheduled_posyandu"]
