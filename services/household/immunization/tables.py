"""The immunisation tables: schedule versions, the doses given, and the FHIR resources already imported."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.household.tables import Table
from shared.db import timestamptz, utc_now


class ScheduleVersionRecord(Table, table=True):
    """One version of the national schedule: its dose rows (`schedule.ScheduleRow`) and the day it starts."""

    __tablename__ = "immunization_schedule_versions"

    version: str = Field(primary_key=True, max_length=60)
    valid_from: date = Field(sa_column=sa.Column(sa.Date, nullable=False, unique=True))
    source: str | None = Field(default=None, max_length=500)
    rows: list[dict[str, Any]] = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class Dose(Table, table=True):
    """A vaccine dose a child was given; voided rather than deleted, so the record of a correction stays."""

    __tablename__ = "immunization_doses"
    __table_args__ = (
        # One live record per dose of a vaccine (a second is a correction: void the first).
        sa.Index("uq_immunization_doses_live", "member_id", "vaccine", "dose_number", unique=True,
                 postgresql_where=sa.text("status = 'active'")),
        sa.Index("ix_immunization_doses_household", "household_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    member_id: uuid.UUID = Field(foreign_key="members.id")
    household_id: uuid.UUID = Field(foreign_key="households.id")
    vaccine: str = Field(max_length=30)
    dose_number: int
    given_on: date
    #: `posyandu`, `puskesmas`, `elsewhere` or `parent-report`.
    place: str = Field(max_length=20)
    lot_number: str | None = Field(default=None, max_length=40)
    status: str = Field(default="active", max_length=10)
    void_reason: str | None = Field(default=None, max_length=500)
    voided_by: str | None = Field(default=None, max_length=200)
    voided_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class ImportedResource(Table, table=True):
    """A FHIR resource already imported, by its source identifier: the same dose or weighing from the puskesmas
    (SATUSEHAT, ASIK) is never counted twice, however often its bundle arrives."""

    __tablename__ = "fhir_imported_resources"

    system: str = Field(primary_key=True, max_length=200)
    value: str = Field(primary_key=True, max_length=200)
    resource_type: str = Field(max_length=20)
    member_id: uuid.UUID = Field(foreign_key="members.id", index=True)
    #: The dose or measurement it became (or was matched to).
    target_id: uuid.UUID
    imported_by: str = Field(max_length=200)
    imported_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
