"""The household service's tables: what it knows of the registry, households, members, profiles, needs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import new_metadata, timestamptz, utc_now
from shared.tables import audit_log

metadata = new_metadata()


class Table(SQLModel, registry=registry(metadata=metadata)):
    pass




def _json(*, nullable: bool = False) -> Any:
    return sa.Column(JSONB, nullable=nullable)


class KnownRegion(Table, table=True):
    """Regions as the registry announced them (a read model fed by posyandu.registry.v1)."""

    __tablename__ = "known_regions"

    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    retired: bool = False


class KnownPosyandu(Table, table=True):
    """Posyandu as the registry announced them."""

    __tablename__ = "known_posyandu"

    id: uuid.UUID = Field(primary_key=True)
    village_code: str = Field(max_length=10)
    name: str = Field(max_length=200)
    status: str = Field(max_length=10)
    version: int


class Household(Table, table=True):
    __tablename__ = "households"
    __table_args__ = (
        # Two live households may not share a KK number (a KK number is an attribute, not the key).
        sa.Index("uq_households_live_kk", "kk_number", unique=True, postgresql_where=sa.text("status = 'active'")),
        sa.Index("ix_households_posyandu", "posyandu_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kk_number: str = Field(max_length=16)
    village_code: str = Field(max_length=10, index=True)
    posyandu_id: uuid.UUID
    address: str | None = Field(default=None, max_length=500)
    rt: str | None = Field(default=None, max_length=3)
    rw: str | None = Field(default=None, max_length=3)
    latitude: float | None = None
    longitude: float | None = None
    status: str = Field(default="active", max_length=10)
    #: Set when the registry retired the household's village: someone must re-assign it.
    needs_reassignment: bool = False
    version: int = 1
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class KkNumberHistory(Table, table=True):
    """Every KK number a household has had (a new card is issued when a family splits, merges or moves)."""

    __tablename__ = "kk_number_history"

    id: int | None = Field(default=None, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    kk_number: str = Field(max_length=16, index=True)
    valid_from: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    valid_to: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    recorded_by: str = Field(max_length=200)


class Member(Table, table=True):
    __tablename__ = "members"
    __table_args__ = (
        sa.Index("uq_members_live_nik", "nik", unique=True,
                 postgresql_where=sa.text("nik IS NOT NULL AND status = 'active'")),
        sa.Index("ix_members_name_birth", sa.text("lower(name)"), "birth_date"),
        # The need sweep selects the members whose age crosses a rule's threshold by birth-date ranges.
        sa.Index("ix_members_birth_date", "birth_date", postgresql_where=sa.text("status = 'active'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    nik: str | None = Field(default=None, max_length=16)
    name: str = Field(max_length=200)
    sex: str = Field(max_length=6)
    birth_date: date
    relationship: str = Field(max_length=12)
    pregnant: bool = False
    expected_delivery_date: date | None = None
    disability: str = Field(default="none", max_length=12)
    status: str = Field(default="active", max_length=10)
    #: The NIK was registered in another district than the household's village (people move): a flag only.
    nik_region_mismatch: bool = False
    #: Set when this record was merged into another (status `merged`).
    merged_into: uuid.UUID | None = None
    version: int = 1
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class ProfileVersion(Table, table=True):
    """Each recorded version of a household's profile for one SPM field; the highest version is current."""

    __tablename__ = "profile_versions"

    household_id: uuid.UUID = Field(foreign_key="households.id", primary_key=True)
    spm_field: str = Field(primary_key=True, max_length=20)
    version: int = Field(primary_key=True)
    data: dict[str, Any] = Field(sa_column=_json())
    observed_on: date | None = None
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class Need(Table, table=True):
    """A detected need: open while its rule's condition holds, resolved when it clears."""

    __tablename__ = "needs"
    __table_args__ = (
        sa.Index("uq_needs_open", "household_id",
                 sa.text("coalesce(member_id, '00000000-0000-0000-0000-000000000000'::uuid)"), "category",
                 unique=True, postgresql_where=sa.text("status = 'open'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    member_id: uuid.UUID | None = None
    spm_field: str = Field(max_length=20)
    category: str = Field(max_length=60)
    urgency: str = Field(max_length=10)
    evidence: dict[str, Any] = Field(sa_column=_json())
    status: str = Field(default="open", max_length=10)
    detected_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    resolved_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    #: Why it was resolved other than by its condition clearing (a life event: `deceased`, ...); None otherwise.
    resolution: str | None = Field(default=None, max_length=20)


class AgencyAccess(Table, table=True):
    """Which agency holds (or was escalated) an open referral for which household (fed by the referral topics)."""

    __tablename__ = "agency_access"

    referral_id: uuid.UUID = Field(primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    household_id: uuid.UUID = Field(index=True)
    #: The referral's field: the agency's token must carry it (an agency of several fields acts per field).
    spm_field: str = Field(max_length=20)
    open: bool = True
    #: The field's province agency the referral escalated to: it reads the household as the agency does.
    escalated_to_agency_id: uuid.UUID | None = Field(default=None, index=True)
    #: The referral's version of the last applied event: an older one arriving late changes nothing.
    version: int = 0


class Measurement(Table, table=True):
    """A child's measurement with its WHO z-scores, classes and KMS signal, computed when recorded."""

    __tablename__ = "measurements"
    __table_args__ = (sa.Index("ix_measurements_member_date", "member_id", "measured_on"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    member_id: uuid.UUID = Field(foreign_key="members.id")
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    measured_on: date
    weight_kg: float | None = None
    length_height_cm: float | None = None
    measured_lying: bool | None = None
    head_circumference_cm: float | None = None
    muac_cm: float | None = None
    oedema: bool = False
    age_days: int
    waz: float | None = None
    haz: float | None = None
    whz: float | None = None
    baz: float | None = None
    waz_class: str | None = Field(default=None, max_length=30)
    haz_class: str | None = Field(default=None, max_length=30)
    whz_class: str | None = Field(default=None, max_length=30)
    muac_class: str | None = Field(default=None, max_length=30)
    kms_signal: str | None = Field(default=None, max_length=3)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class DuplicateFlag(Table, table=True):
    """A likely duplicate (same name, birth date and village, a NIK missing) waiting for a person to decide."""

    __tablename__ = "duplicate_flags"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    member_id: uuid.UUID = Field(foreign_key="members.id", index=True)
    candidate_id: uuid.UUID = Field(foreign_key="members.id", index=True)
    status: str = Field(default="open", max_length=10)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))


class LifeEvent(Table, table=True):
    """A death, a move, a departure or a closing as recorded, with its date (README: "Life events")."""

    __tablename__ = "life_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: `died`, `moved`, `moved-out` (of a member) or `closed` (of the household).
    kind: str = Field(max_length=10)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    member_id: uuid.UUID | None = Field(default=None, foreign_key="members.id", index=True)
    occurred_on: date
    #: Of a move (`split`, `marriage`, `merge`, `other`) or a closing (`members-gone`, `merged`).
    reason: str | None = Field(default=None, max_length=20)
    #: The household a member moved to, or that a closed household merged into.
    to_household_id: uuid.UUID | None = Field(default=None, foreign_key="households.id")
    destination_region_code: str | None = Field(default=None, max_length=10)
    cause_category: str | None = Field(default=None, max_length=30)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class AccessLogOrigin(Table, table=True):
    """Where an audit_log row of a read in another service came from (posyandu.audit.v1): the reading service, the
    event, and the reader's organisation; the household's own reads have none. Deleted with its audit row."""

    __tablename__ = "access_log_origins"

    audit_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey(audit_log.c.id, ondelete="CASCADE"),
                                              primary_key=True))
    event_id: uuid.UUID = Field(unique=True)
    service: str = Field(max_length=50)
    actor_agency_id: uuid.UUID | None = None
    actor_agency_name: str | None = Field(default=None, max_length=200)
    actor_posyandu_ids: list[uuid.UUID] = Field(default_factory=list,
                                                sa_column=sa.Column(ARRAY(sa.Uuid), nullable=False))


class NeedSweep(Table, table=True):
    """One row per daily need sweep that completed: the day it evaluated, from which day, and what it did."""

    __tablename__ = "need_sweeps"

    #: The day (UTC) the rules were evaluated on; the latest row is where the next sweep starts.
    swept_on: date = Field(primary_key=True)
    #: The day after the previous sweep: members whose thresholds fell in [since, swept_on] were evaluated.
    since: date
    households: int
    detected: int
    resolved: int
    started_at: datetime = Field(sa_column=timestamptz())
    finished_at: datetime = Field(sa_column=timestamptz())


class KnownSchedule(Table, table=True):
    """Each posyandu's opening-day schedule as the registry announced it (posyandu.schedule.changed.v1)."""

    __tablename__ = "known_schedules"

    posyandu_id: uuid.UUID = Field(primary_key=True)
    #: The event's rule and dated exceptions (shared.events.registry.ScheduleData without the computed dates).
    schedule: dict[str, Any] = Field(sa_column=_json())
    version: int


class PosyanduSession(Table, table=True):
    """One opening day at one posyandu, opened and closed by its kader; closed, it takes no more visits."""

    __tablename__ = "sessions"
    __table_args__ = (sa.UniqueConstraint("posyandu_id", "session_date"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    posyandu_id: uuid.UUID
    village_code: str = Field(max_length=10)
    session_date: date
    #: `open` or `closed`.
    status: str = Field(default="open", max_length=10)
    opened_by: str = Field(max_length=200)
    opened_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    closed_by: str | None = Field(default=None, max_length=200)
    closed_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    version: int = 1


class Visit(Table, table=True):
    """One member's visit at one session: the services received, one typed section per life-cycle group."""

    __tablename__ = "visits"
    __table_args__ = (sa.UniqueConstraint("session_id", "member_id"),
                      sa.Index("ix_visits_member_date", "member_id", "visited_on"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="sessions.id")
    member_id: uuid.UUID = Field(foreign_key="members.id")
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    posyandu_id: uuid.UUID
    #: The session's date.
    visited_on: date
    #: DOMAIN.md §8's group (`infant`, `toddler`, `school-age`, `adult`, `elderly`) and age on the visit date.
    life_cycle_group: str = Field(max_length=12)
    age_months: int
    pregnant: bool = False
    #: The sections, each as its model in shared.events.household dumps it (null: not seen for that group).
    child: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    pregnancy: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    adolescent: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    adult: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))
    #: Counselling (penyuluhan) topics given.
    counselling: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.ARRAY(sa.Text), nullable=False))
    #: The child's measurement taken at this visit (recorded through the measurements module).
    measurement_id: uuid.UUID | None = Field(default=None, foreign_key="measurements.id")
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
