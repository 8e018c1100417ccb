"""The programmes as the registry announced them, their beneficiary lists as uploaded and matched, and the agencies'
jurisdictions (who may read which region's aid reports)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from services.household.tables import Table
from shared.db import timestamptz, utc_now


class KnownProgramme(Table, table=True):
    """A programme of an agency (posyandu.programme.registered/updated.v1): whose list it is, for which need."""

    __tablename__ = "programmes"

    id: uuid.UUID = Field(primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    name: str = Field(max_length=200)
    spm_field: str = Field(max_length=20)
    service_type: str = Field(max_length=60)
    region_codes: list[str] = Field(sa_column=sa.Column(ARRAY(sa.String(10)), nullable=False))
    period_start: date
    period_end: date
    status: str = Field(max_length=10)
    version: int


class KnownAgency(Table, table=True):
    """An agency's jurisdiction and fields as the registry announced them (posyandu.agency.*.v1)."""

    __tablename__ = "known_agencies"

    id: uuid.UUID = Field(primary_key=True)
    jurisdiction_code: str = Field(max_length=10)
    spm_fields: list[str] = Field(sa_column=sa.Column(ARRAY(sa.String(20)), nullable=False))
    status: str = Field(max_length=10)
    version: int


class BeneficiaryUpload(Table, table=True):
    """One upload of a programme's list: who sent it, when, and what matched (the rows replace the previous list)."""

    __tablename__ = "beneficiary_uploads"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="programmes.id", index=True)
    filename: str | None = Field(default=None, max_length=200)
    rows: int
    exact_nik: int
    exact_kk: int
    likely: int
    unmatched: int
    uploaded_by: str = Field(max_length=200)
    uploaded_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class Beneficiary(Table, table=True):
    """One row of a programme's current list and what it matched: `match` says how (`nik`, `kk`, `likely`, `none`);
    `status` is `confirmed` (an exact match, or a likely one a person confirmed), `pending` (likely, to review),
    `rejected` or `unmatched`. Only confirmed rows count as aid received."""

    __tablename__ = "beneficiaries"
    __table_args__ = (
        sa.Index("ix_beneficiaries_programme_row", "programme_id", "row_number"),
        sa.Index("ix_beneficiaries_household", "household_id", postgresql_where=sa.text("household_id IS NOT NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="programmes.id")
    upload_id: uuid.UUID = Field(foreign_key="beneficiary_uploads.id")
    row_number: int
    nik: str | None = Field(default=None, max_length=16)
    kk_number: str | None = Field(default=None, max_length=16)
    name: str = Field(max_length=200)
    birth_date: date
    period_start: date
    period_end: date
    note: str | None = Field(default=None, max_length=500)
    match: str = Field(max_length=10)
    status: str = Field(max_length=10)
    household_id: uuid.UUID | None = Field(default=None, foreign_key="households.id")
    member_id: uuid.UUID | None = Field(default=None, foreign_key="members.id")
    reviewed_by: str | None = Field(default=None, max_length=200)
    reviewed_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
