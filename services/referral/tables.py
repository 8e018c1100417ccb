"""The referral service's tables: what it knows of agencies and households, referrals, history, notes, SLA."""

from __future__ import annotations

import uuid
from datetime import date as date_
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import new_metadata, timestamptz, utc_now

metadata = new_metadata()


class Table(SQLModel, registry=registry(metadata=metadata)):
    pass




class KnownAgency(Table, table=True):
    """Agencies as the registry announced them (a read model fed by posyandu.registry.v1): the routing input."""

    __tablename__ = "known_agencies"
    __table_args__ = (sa.Index("ix_known_agencies_routing", "jurisdiction_code", "status"),)

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    jurisdiction_code: str = Field(max_length=4)
    spm_fields: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    status: str = Field(max_length=10)
    version: int
    #: The time of its `registered` event: "among equals the earliest registered" orders by this.
    registered_at: datetime = Field(sa_column=timestamptz())


class KnownHousehold(Table, table=True):
    """Households as the household service announced them: posyandu and village, for scoping hand-made referrals."""

    __tablename__ = "known_households"

    id: uuid.UUID = Field(primary_key=True)
    posyandu_id: uuid.UUID = Field(index=True)
    village_code: str = Field(max_length=10)
    status: str = Field(max_length=10)
    version: int


class KnownMember(Table, table=True):
    """Members as announced (masked NIK only): a hand-made referral for a member names one of these."""

    __tablename__ = "known_members"

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID = Field(index=True)
    nik_masked: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=10)
    version: int


class Referral(Table, table=True):
    __tablename__ = "referrals"
    __table_args__ = (
        # One referral per need, however often its event is delivered.
        sa.Index("uq_referrals_need_id", "need_id", unique=True, postgresql_where=sa.text("need_id IS NOT NULL")),
        sa.Index("ix_referrals_agency_status", "agency_id", "status", "created_at"),
        sa.Index("ix_referrals_field_status", "spm_field", "status"),
        sa.Index("ix_referrals_created", "created_at", "id"),
        sa.Index("ix_referrals_unrouted", "spm_field", "village_code",
                 postgresql_where=sa.text("agency_id IS NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    need_id: uuid.UUID | None = None
    household_id: uuid.UUID = Field(index=True)
    member_id: uuid.UUID | None = None
    member_nik_masked: str | None = Field(default=None, max_length=16)
    posyandu_id: uuid.UUID = Field(index=True)
    village_code: str = Field(max_length=10, index=True)
    spm_field: str = Field(max_length=20)
    category: str = Field(max_length=60)
    urgency: str = Field(max_length=10)
    reason: str | None = Field(default=None, max_length=2000)
    #: The need's evidence (health or welfare details): for the assigned agency's REST read, never in events.
    evidence: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    #: `manual` (a kader) or `need` (from a detected need).
    origin: str = Field(max_length=10)
    status: str = Field(max_length=12)
    agency_id: uuid.UUID | None = None
    outcome: str | None = Field(default=None, max_length=2000)
    respond_by: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    complete_by: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    escalate_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    responded_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    overdue_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    escalated_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    escalated_to_agency_id: uuid.UUID | None = None
    need_resolved_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    version: int = 1
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class ReferralTransition(Table, table=True):
    """Every move of a referral (creation, lifecycle actions, routing): who, when, why."""

    __tablename__ = "referral_transitions"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referrals.id", index=True)
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=12)
    to_status: str = Field(max_length=12)
    from_agency_id: uuid.UUID | None = None
    to_agency_id: uuid.UUID | None = None
    actor: str = Field(max_length=200)
    actor_role: str = Field(max_length=10)
    #: The agency an opd actor acted for (the regency or, on an escalated referral, the province agency).
    actor_agency_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000)
    at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class ReferralNote(Table, table=True):
    """A note or outcome feedback, from the posyandu, the agency, or the system."""

    __tablename__ = "referral_notes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referrals.id", index=True)
    author: str = Field(max_length=200)
    author_role: str = Field(max_length=10)
    author_side: str = Field(max_length=10)
    #: The agency an opd author wrote for.
    author_agency_id: uuid.UUID | None = None
    text: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class SlaOverride(Table, table=True):
    """A region's own deadlines (DOMAIN.md §6 is policy): per urgency, for an agency, a category and/or a region.

    The most specific row wins (services/referral/sla/service.py, `sla_for`): one with the agency before one
    without, then one with the category, then the longest region prefix; with none the defaults in code apply.
    `unit` says how the durations count: `hours` and `days` are calendar time, `working_days` counts whole days
    that are neither weekend nor a holiday of the calendar in force.
    """

    __tablename__ = "sla_overrides"
    __table_args__ = (
        sa.Index("uq_sla_overrides_scope", sa.text("coalesce(agency_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
                 sa.text("coalesce(category, '')"), sa.text("coalesce(region_prefix, '')"), "urgency", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    agency_id: uuid.UUID | None = None
    category: str | None = Field(default=None, max_length=60)
    region_prefix: str | None = Field(default=None, max_length=10)
    urgency: str = Field(max_length=10)
    respond_within: timedelta = Field(sa_column=sa.Column(sa.Interval, nullable=False))
    complete_within: timedelta = Field(sa_column=sa.Column(sa.Interval, nullable=False))
    unit: str = Field(default="hours", max_length=12)
    version: int = 1
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class EscalationDelay(Table, table=True):
    """How long after the completion deadline an open referral escalates, per urgency, where an admin set it
    (otherwise ESCALATION_DELAY in sla/config.py)."""

    __tablename__ = "sla_escalation_delays"

    urgency: str = Field(primary_key=True, max_length=10)
    delay: timedelta = Field(sa_column=sa.Column(sa.Interval, nullable=False))
    unit: str = Field(default="days", max_length=12)
    version: int = 1
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class HolidayCalendar(Table, table=True):
    """One version of a year's national holiday calendar (libur nasional and cuti bersama, as the joint decree of
    the three ministers sets them and its revisions change them): the highest version of a year is in force."""

    __tablename__ = "holiday_calendars"

    year: int = Field(primary_key=True)
    version: int = Field(primary_key=True)
    source: str = Field(max_length=300)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class Holiday(Table, table=True):
    """A day off in one calendar version: `libur-nasional` or `cuti-bersama`."""

    __tablename__ = "holidays"
    __table_args__ = (sa.ForeignKeyConstraint(["year", "version"],
                                              ["holiday_calendars.year", "holiday_calendars.version"]),)

    year: int = Field(primary_key=True)
    version: int = Field(primary_key=True)
    date: date_ = Field(primary_key=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)


class RoutingRule(Table, table=True):
    """Where referrals of a field (and optionally a category, and a region) go: to the agency of a level, or to one
    agency. The router takes the most specific rule with an agency that `coverage` admits (routing/service.py)."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        sa.Index("uq_routing_rules_scope", "spm_field", sa.text("coalesce(category, '')"),
                 sa.text("coalesce(region_prefix, '')"), unique=True),
        sa.CheckConstraint("(agency_level IS NULL) <> (agency_id IS NULL)", name="one_target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    spm_field: str = Field(max_length=20)
    category: str | None = Field(default=None, max_length=60)
    region_prefix: str | None = Field(default=None, max_length=10)
    agency_level: str | None = Field(default=None, max_length=10)
    agency_id: uuid.UUID | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
