"""A crafted event stream: CloudEvents built with the catalogue, at chosen times, for the tests of the consumers
(reporting's projections, the fault tests' referral and household consumers).

The stream carries only what the real services publish: ids, region codes, coded values. `Stream` collects events;
`publish` sends them to the real topics, keyed as the relays key them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from shared.events import household as hh
from shared.events import referral as rf
from shared.events import registry as reg
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField


def previous_month(today: date | None = None) -> tuple[str, date, date]:
    """The label, first day and last day of the month before this one (a closed period, stable ages)."""
    today = today or datetime.now(UTC).date()
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last:%Y-%m}", last.replace(day=1), last


def at(day: date, hours: float = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def years_before(day: date, years: int, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - years * 12 - months
    return date(index // 12, index % 12 + 1, 1)


class Stream:
    """Events of one crafted history, in the order they were built (tests reorder or repeat them)."""

    def __init__(self, default_time: datetime) -> None:
        self.default_time = default_time
        self.events: list[tuple[EventType, CloudEvent]] = []

    def add(self, event_type: EventType, data: BaseModel, *, subject: str, when: datetime | None = None,
            regioncode: str | None = None, spmfield: SpmField | None = None) -> CloudEvent:
        # The envelope's regioncode is a village code or absent (a test may put another code in the data).
        village = regioncode if regioncode and regioncode.isascii() and regioncode.isdigit() and len(regioncode) == 10 \
            else None
        event = event_type.new(data, subject=subject, regioncode=village, spmfield=spmfield)
        event = event.model_copy(update={"time": when or self.default_time})
        self.events.append((event_type, event))
        return event

    def region(self, code: str, name: str, level: str, parent: str | None) -> None:
        self.add(reg.REGION_REGISTERED, reg.RegionData(code=code, name=name, level=reg.RegionLevel(level),
                                                       parent_code=parent, list_version="test"), subject=code)

    def posyandu(self, village: str) -> uuid.UUID:
        pid = uuid.uuid4()
        self.add(reg.POSYANDU_REGISTERED, reg.PosyanduData(
            posyandu_id=pid, code=f"P{village}", name="Posyandu Mawar", village_code=village,
            status=reg.Status.ACTIVE, service_days=[], version=1), subject=str(pid))
        return pid

    def agency(self, jurisdiction: str, fields: list[str], *, active: bool = True,
               name: str | None = None) -> uuid.UUID:
        aid = uuid.uuid4()
        self.add(reg.AGENCY_REGISTERED, reg.AgencyData(
            agency_id=aid, name=name or f"Dinas {'/'.join(fields)} {jurisdiction}",
            level=reg.AgencyLevel.PROVINCE if len(jurisdiction) == 2 else reg.AgencyLevel.REGENCY,
            jurisdiction_code=jurisdiction, spm_fields=[SpmField(f) for f in fields],
            status=reg.Status.ACTIVE if active else reg.Status.INACTIVE, version=1), subject=str(aid))
        return aid

    def household(self, village: str, posyandu_id: uuid.UUID | None = None) -> uuid.UUID:
        hid = uuid.uuid4()
        self.add(hh.HOUSEHOLD_REGISTERED, hh.HouseholdData(
            household_id=hid, kk_number_masked="810101******0001", village_code=village,
            posyandu_id=posyandu_id or uuid.uuid4(), status="active", needs_reassignment=False, version=1),
            subject=str(hid), regioncode=village)
        return hid

    def member(self, household_id: uuid.UUID, birth_date: date, *, sex: str = "female", pregnant: bool = False,
               version: int = 1, member_id: uuid.UUID | None = None, disability: str = "none") -> uuid.UUID:
        mid = member_id or uuid.uuid4()
        event_type = hh.MEMBER_ADDED if version == 1 else hh.MEMBER_UPDATED
        self.add(event_type, hh.MemberData(
            member_id=mid, household_id=household_id, nik_masked=None, sex=sex, birth_date=birth_date,
            relationship="other", pregnant=pregnant, disability=disability, status="active", version=version),
            subject=str(household_id))
        return mid

    def merge(self, survivor: uuid.UUID, merged: uuid.UUID, household_id: uuid.UUID) -> None:
        self.add(hh.MEMBER_MERGED, hh.MemberMergedData(survivor_id=survivor, merged_id=merged,
                                                       survivor_household_id=household_id,
                                                       merged_household_id=household_id), subject=str(household_id))

    def profile(self, household_id: uuid.UUID, field: str, profile: dict[str, Any], *, observed_on: date,
                version: int = 1, undated: bool = False, decided: hh.ProfileDecisions | None = None) -> None:
        """A profile version observed on the day (`undated`: without the day, as older events came, when the event
        time stands for it), with the household service's verdicts if given."""
        self.add(hh.PROFILE_UPDATED, hh.ProfileUpdatedData(
            household_id=household_id, spm_field=SpmField(field), version=version,
            observed_on=None if undated else observed_on, profile=profile, decided=decided),
            subject=str(household_id), when=at(observed_on, 9) if undated else None)

    def measurement(self, household_id: uuid.UUID, member_id: uuid.UUID, measured_on: date, *, age_days: int,
                    haz: str = "normal", waz: str = "normal", whz: str = "normal") -> None:
        self.add(hh.MEASUREMENT_RECORDED, hh.MeasurementData(
            measurement_id=uuid.uuid4(), household_id=household_id, member_id=member_id, measured_on=measured_on,
            age_days=age_days, waz=None, haz=None, whz=None, waz_class=waz, haz_class=haz, whz_class=whz,
            muac_class=None, kms_signal=None), subject=str(household_id))

    def need(self, household_id: uuid.UUID, village: str, category: str, *, detected: datetime,
             resolved: datetime | None = None, resolved_first: bool = False) -> None:
        data = hh.NeedData(need_id=uuid.uuid4(), household_id=household_id, member_id=None, member_nik_masked=None,
                           posyandu_id=uuid.uuid4(), village_code=village, spm_field=SpmField(category.split(".")[0]),
                           category=category, urgency="normal", evidence={})
        steps = [(hh.NEED_DETECTED, detected)] + ([(hh.NEED_RESOLVED, resolved)] if resolved else [])
        for event_type, when in (reversed(steps) if resolved_first else steps):
            self.add(event_type, data, subject=str(household_id), when=when, regioncode=village)

    def referral(self, village: str, category: str, *, created: datetime, agency_id: uuid.UUID | None,
                 steps: list[tuple[str, float, dict[str, Any]]], complete_by_hours: float = 720,
                 reverse: bool = False) -> uuid.UUID:
        """A referral's events: created (`requested`), then each (status, hours after creation, extra fields)."""
        rid = uuid.uuid4()
        field = SpmField(category.split(".")[0])
        state: dict[str, Any] = {
            "referral_id": rid, "need_id": None, "household_id": uuid.uuid4(), "member_id": None,
            "posyandu_id": uuid.uuid4(), "village_code": village, "spm_field": field,
            "category": category, "urgency": "normal", "status": "requested", "agency_id": agency_id,
            "respond_by": created + timedelta(days=7), "complete_by": created + timedelta(hours=complete_by_hours),
            "version": 1, "created_at": created}
        built = [(rf.REFERRAL_CREATED, rf.ReferralData(**state), created)]
        for version, (status, hours, extra) in enumerate(steps, start=2):
            state.update(status=status, version=version, **extra)
            built.append((rf.REFERRAL_OVERDUE if "overdue_at" in extra else rf.REFERRAL_STATUS_CHANGED,
                          rf.ReferralData(**state), created + timedelta(hours=hours)))
        for event_type, data, when in (reversed(built) if reverse else built):
            self.add(event_type, data, subject=str(rid), when=when, regioncode=village, spmfield=field)
        return rid


async def publish(bootstrap_servers: str, events: list[tuple[EventType, CloudEvent]]) -> None:
    """Send each event to its topic, keyed by its subject, as the services' relays do."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for event_type, event in events:
            await producer.send_and_wait(event_type.topic_for(event.spmfield), value=event.to_bytes(),
                                         key=event.subject.encode(), headers=event.kafka_headers())
    finally:
        await producer.stop()
