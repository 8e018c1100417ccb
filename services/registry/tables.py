"""The registry's tables: regions, posyandu, cadres, agencies, their programmes and target figures (in the service's
own MetaData)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import new_metadata, timestamptz, utc_now

metadata = new_metadata()


class Table(SQLModel, registry=registry(metadata=metadata)):
    pass




class Region(Table, table=True):
    __tablename__ = "regions"
    __table_args__ = (
        sa.Index("ix_regions_name_trgm", sa.text("lower(name) gin_trgm_ops"), postgresql_using="gin"),
    )

    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    parent_code: str | None = Field(default=None, max_length=6, index=True)
    kind: str | None = Field(default=None, max_length=20)
    list_version: str = Field(max_length=100)
    retired_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(server_default=sa.func.now()))


class Posyandu(Table, table=True):
    __tablename__ = "posyandu"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=200)
    village_code: str = Field(foreign_key="regions.code", max_length=10, index=True)
    address: str | None = Field(default=None, max_length=500)
    latitude: float | None = None
    longitude: float | None = None
    service_days: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    status: str = Field(default="active", max_length=10, index=True)
    version: int = Field(default=1)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))


class Cadre(Table, table=True):
    __tablename__ = "cadres"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    posyandu_id: uuid.UUID = Field(foreign_key="posyandu.id", index=True)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=254)
    duties: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    status: str = Field(default="active", max_length=10)
    since: date | None = None
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))


class Agency(Table, table=True):
    __tablename__ = "agencies"
    __table_args__ = (sa.Index("ix_agencies_routing", "jurisdiction_code", "status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    jurisdiction_code: str = Field(foreign_key="regions.code", max_length=4)
    spm_fields: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=30)
    address: str | None = Field(default=None, max_length=500)
    status: str = Field(default="active", max_length=10)
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
    #: `opd` or `partner` (Baznas, Kemenag, BKKBN, ...), set at registration.
    kind: str = Field(default="opd", sa_column=sa.Column(sa.String(10), nullable=False, server_default="opd"))


class PosyanduSchedule(Table, table=True):
    """A posyandu's monthly opening-day rule (none: only its explicit dates); its exceptions are rows below."""

    __tablename__ = "posyandu_schedules"

    posyandu_id: uuid.UUID = Field(foreign_key="posyandu.id", primary_key=True)
    #: `first` .. `fourth` or `last` with a weekday (`monday` ..), e.g. the second Tuesday; both null: no rule.
    rule_ordinal: str | None = Field(default=None, max_length=10)
    rule_weekday: str | None = Field(default=None, max_length=10)
    version: int = Field(default=1)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))


class ScheduleException(Table, table=True):
    """An extra opening day, a rule day moved to another date, or a cancelled rule day, with its reason."""

    __tablename__ = "schedule_exceptions"
    __table_args__ = (sa.UniqueConstraint("posyandu_id", "on_date"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    posyandu_id: uuid.UUID = Field(foreign_key="posyandu_schedules.posyandu_id", index=True)
    #: `extra`, `moved` or `cancelled`.
    kind: str = Field(max_length=10)
    #: The extra day, the rule day moved away from, or the cancelled day.
    on_date: date
    #: A moved day's new date.
    to_date: date | None = None
    reason: str = Field(max_length=200)


class Programme(Table, table=True):
    """An agency's programme supporting posyandu (issue 15): budget lines and planned outputs as JSON lists."""

    __tablename__ = "programmes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agencies.id", index=True)
    name: str = Field(max_length=200)
    spm_field: str = Field(max_length=20, index=True)
    service_type: str = Field(max_length=80)
    region_codes: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    period_start: date
    period_end: date
    #: [{"source": "zakat", "amount": 150000000}, ...]
    budget: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    #: [{"code": "pmt-packages", "name": ..., "unit": "paket", "target": 2000}, ...]
    outputs: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    status: str = Field(default="active", max_length=10)
    version: int = Field(default=1)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))


class ProgrammeRealisation(Table, table=True):
    """A programme's delivered outputs and spending in one month (the month's whole figures)."""

    __tablename__ = "programme_realisations"

    programme_id: uuid.UUID = Field(foreign_key="programmes.id", primary_key=True)
    month: str = Field(primary_key=True, max_length=7)
    outputs: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    spent: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    version: int = Field(default=1)
    reported_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))


class ProgrammeChange(Table, table=True):
    """Every change of a programme or of one of its months, with who made it and the state after it."""

    __tablename__ = "programme_history"

    id: int | None = Field(default=None, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="programmes.id", index=True)
    #: `registered`, `updated` or `realised`.
    action: str = Field(max_length=10)
    #: The realised month, for `realised`.
    month: str | None = Field(default=None, max_length=7)
    #: The programme's version, or the month's realisation version for `realised`.
    version: int
    actor: str = Field(max_length=200)
    at: datetime = Field(sa_column=timestamptz(nullable=False))
    state: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))


class TargetFigure(Table, table=True):
    """An agency's own target (sasaran) for a region, year and SPM service type; a withdrawn one keeps its row."""

    __tablename__ = "spm_target_figures"

    agency_id: uuid.UUID = Field(foreign_key="agencies.id", primary_key=True)
    region_code: str = Field(foreign_key="regions.code", primary_key=True, max_length=10)
    year: int = Field(primary_key=True)
    service_type: str = Field(primary_key=True, max_length=80)
    #: None: withdrawn (the computed target applies).
    target: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    version: int = Field(default=1)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz(nullable=False))
