"""The reporting service's projections: per-entity latest state built from the events, no personal data.

Each table is keyed by the aggregate's id and written with upserts guarded by the aggregate's `version` (or by
event time where the events carry no version), so a redelivered or late event never overwrites newer state and
any delivery order converges to the same rows. Indicators are computed from these tables with SQL GROUP BY on
region-code prefixes: incremental on write, exact on read. Names, NIKs, addresses and free text never land here.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import new_metadata, timestamptz

metadata = new_metadata()

#: The platform tables of reporting (shared/tables.py): it consumes (inbox, dead letters) and audits the dead-letter
#: reads and decisions (audit log); it publishes nothing and takes no creates, so it has no outbox, outbox offsets
#: or idempotency keys (dropped by revision 2026_12_01_0010).
PLATFORM_TABLES = ("inbox", "audit_log", "dead_letters")

#: Reports select villages by code prefix (`village_code LIKE '31%'`). An index serves that under any collation
#: only with the pattern operator class; the default one serves it under the C collation alone.
_PREFIX_OPS = {"village_code": "varchar_pattern_ops"}


class Table(SQLModel, registry=registry(metadata=metadata)):
    pass



class RegionRow(Table, table=True):
    """Regions as the registry announced them: names for the tables and the dashboard."""

    __tablename__ = "regions"

    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    parent_code: str | None = Field(default=None, max_length=10)
    retired: bool = False
    #: The time of the newest event applied (region events carry no version).
    event_time: datetime = Field(sa_column=timestamptz())


class PosyanduRow(Table, table=True):
    """Posyandu and their villages: a kader's token names posyandu, reports are by village."""

    __tablename__ = "posyandu"

    id: uuid.UUID = Field(primary_key=True)
    village_code: str = Field(max_length=10, index=True)
    status: str = Field(max_length=10)
    version: int


class AgencyRow(Table, table=True):
    """Agencies (OPD) with their fields and jurisdiction: the rows of the cross-agency matrix."""

    __tablename__ = "agencies"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    level: str = Field(max_length=10)
    jurisdiction_code: str = Field(max_length=4)
    spm_fields: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    status: str = Field(max_length=10)
    version: int


class HouseholdRow(Table, table=True):
    __tablename__ = "households"
    __table_args__ = (sa.Index("ix_households_village_code", "village_code", "status", postgresql_ops=_PREFIX_OPS),)

    id: uuid.UUID = Field(primary_key=True)
    village_code: str = Field(max_length=10)
    posyandu_id: uuid.UUID
    status: str = Field(max_length=10)
    version: int
    #: The earliest event time seen for the household (its registration, whatever order events arrive in).
    first_seen_at: datetime = Field(sa_column=timestamptz())


class MemberRow(Table, table=True):
    """A member's age, sex and flags; the masked NIK, name and relationship details are not kept."""

    __tablename__ = "members"

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID = Field(index=True)
    sex: str = Field(max_length=10)
    birth_date: date
    pregnant: bool = False
    disability: str = Field(max_length=15)
    status: str = Field(max_length=10)
    version: int
    first_seen_at: datetime = Field(sa_column=timestamptz())


class MemberMergeRow(Table, table=True):
    """A duplicate member merged into a survivor: not counted, whether its merge or its own events come first."""

    __tablename__ = "member_merges"

    merged_id: uuid.UUID = Field(primary_key=True)
    survivor_id: uuid.UUID


class ProfileVersionRow(Table, table=True):
    """Every version of a household's field profile, so a period's indicator reads the version in force then."""

    __tablename__ = "profile_versions"

    household_id: uuid.UUID = Field(primary_key=True)
    spm_field: str = Field(primary_key=True, max_length=20)
    version: int = Field(primary_key=True)
    observed_on: date | None = None
    event_time: datetime = Field(sa_column=timestamptz())
    #: The section as published: coded values keyed by member id; never a name or NIK.
    data: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    #: The household service's verdicts on it (ProfileDecisions: rtlh, safe_water, low_decile), when published.
    decided: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))


class MeasurementRow(Table, table=True):
    """A child measurement's classes (the z-scores' meaning), immutable once recorded."""

    __tablename__ = "measurements"
    __table_args__ = (sa.Index("ix_measurements_member_measured_on", "member_id", "measured_on"),)

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID = Field(index=True)
    member_id: uuid.UUID
    measured_on: date = Field(index=True)
    age_days: int
    haz_class: str | None = Field(default=None, max_length=30)
    waz_class: str | None = Field(default=None, max_length=30)
    whz_class: str | None = Field(default=None, max_length=30)
    muac_class: str | None = Field(default=None, max_length=30)
    kms_signal: str | None = Field(default=None, max_length=5)


class NeedRow(Table, table=True):
    """A detected need: each detection has its own id, detected once and resolved at most once."""

    __tablename__ = "needs"
    __table_args__ = (sa.Index("ix_needs_village_code", "village_code", "spm_field", postgresql_ops=_PREFIX_OPS),)

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID
    village_code: str = Field(max_length=10)
    spm_field: str = Field(max_length=20)
    category: str = Field(max_length=60)
    urgency: str = Field(max_length=10)
    detected_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))


class ReferralRow(Table, table=True):
    """A referral's latest state (the highest version seen) with the times its indicators measure."""

    __tablename__ = "referrals"
    __table_args__ = (
        sa.Index("ix_referrals_village_code", "village_code", "spm_field", postgresql_ops=_PREFIX_OPS),
        sa.Index("ix_referrals_agency_id", "agency_id", "spm_field"),
    )

    id: uuid.UUID = Field(primary_key=True)
    village_code: str = Field(max_length=10)
    posyandu_id: uuid.UUID
    spm_field: str = Field(max_length=20)
    category: str = Field(max_length=60)
    urgency: str = Field(max_length=10)
    status: str = Field(max_length=12)
    agency_id: uuid.UUID | None = None
    version: int
    created_at: datetime = Field(sa_column=timestamptz())
    respond_by: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    complete_by: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    responded_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    #: When it reached a closed status: the time of the event that first reported it closed.
    closed_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    overdue_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    escalated_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))


class SessionRow(Table, table=True):
    """An opening day at a posyandu (a session) and whether it was closed."""

    __tablename__ = "sessions"
    __table_args__ = (sa.Index("ix_sessions_village_code", "village_code", "session_date",
                               postgresql_ops=_PREFIX_OPS),)

    id: uuid.UUID = Field(primary_key=True)
    posyandu_id: uuid.UUID
    village_code: str = Field(max_length=10)
    session_date: date
    status: str = Field(max_length=10)
    version: int


class VisitRow(Table, table=True):
    """A member's visit at a session: the life-cycle group and the SKDN items (book held, weighed, KMS signal);
    the screening values and counselling are not kept."""

    __tablename__ = "visits"
    __table_args__ = (sa.Index("ix_visits_household_visited_on", "household_id", "visited_on"),)

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID
    member_id: uuid.UUID = Field(index=True)
    session_id: uuid.UUID
    visited_on: date
    life_cycle_group: str = Field(max_length=12)
    pregnant: bool = False
    kms_book_held: bool | None = None
    weighed: bool = False
    kms_signal: str | None = Field(default=None, max_length=5)


class DoseRow(Table, table=True):
    """A vaccine dose a child was given (voided: a recording mistake, not counted)."""

    __tablename__ = "doses"
    __table_args__ = (sa.Index("ix_doses_household_vaccine", "household_id", "vaccine"),
                      # The summaries read a member's first doses (summaries/store.py).
                      sa.Index("ix_doses_member_id", "member_id"))

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID
    member_id: uuid.UUID
    vaccine: str = Field(max_length=30)
    dose_number: int
    given_on: date
    voided: bool = False


class SpmProgrammeRow(Table, table=True):
    """An agency's programme (issue 15) as its newest version: the SPM matrix's inputs and budget by source."""

    __tablename__ = "spm_programmes"

    id: uuid.UUID = Field(primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    spm_field: str = Field(max_length=20)
    service_type: str = Field(max_length=80, index=True)
    region_codes: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    period_start: date
    period_end: date
    status: str = Field(max_length=10)
    #: The planned budget: [{"source": ..., "amount": ...}], whole rupiah.
    budget: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    version: int


class SpmRealisationRow(Table, table=True):
    """A programme's delivered outputs and spending in one month (the month's whole figures, newest version)."""

    __tablename__ = "spm_realisations"

    programme_id: uuid.UUID = Field(primary_key=True)
    month: str = Field(primary_key=True, max_length=7)
    agency_id: uuid.UUID
    #: [{"source": ..., "amount": ...}], whole rupiah.
    spent: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    outputs: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    version: int


class SpmTargetFigureRow(Table, table=True):
    """An agency's own target figure for a region, year and service type (null: withdrawn), newest version."""

    __tablename__ = "spm_target_figures"

    agency_id: uuid.UUID = Field(primary_key=True)
    region_code: str = Field(primary_key=True, max_length=10)
    year: int = Field(primary_key=True)
    service_type: str = Field(primary_key=True, max_length=80)
    target: int | None = None
    version: int
    #: When the agency set it (the event's time): of two agencies' figures for one cell, the later stands.
    set_at: datetime = Field(sa_column=timestamptz())


#: The projection tables, in the order a rebuild empties them.
PROJECTIONS: tuple[str, ...] = ("regions", "posyandu", "agencies", "households", "members", "member_merges",
                                "profile_versions",
                                "measurements", "needs", "referrals", "sessions", "visits", "doses",
                                "spm_programmes", "spm_realisations", "spm_target_figures")


# The summaries (issue 13): counts kept by the consumers beside the projections, one row per region at every
# level (nation '', province, regency, district, village), so a report reads its answer's rows and nothing else.
# Region codes compare bytewise (collation C): a prefix is the range [prefix, prefix + ':').
_REGION = sa.String(10, collation="C")


class SummaryStockRow(Table, table=True):
    """A stock's change from `month` on: the stock at a period's end is the sum over the months before the end.

    `born` is the birth date of the members an aged stock counts (0001-01-01 for the others), so any age band on
    any reference day is a range of these rows."""

    __tablename__ = "summary_stocks"

    level: int = Field(primary_key=True)
    region: str = Field(sa_column_kwargs={"primary_key": True}, sa_type=_REGION)
    month: date = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=120)
    born: date = Field(primary_key=True)
    n: int = Field(sa_type=sa.BigInteger)


class FlowColumns(Table):
    """The columns of a flow table: `span` is M (a month), Q (a quarter) or Y (a year) and `month` the period's
    first month, so a period's flows are one range of rows."""

    level: int = Field(primary_key=True)
    span: str = Field(primary_key=True, max_length=1)
    month: date = Field(primary_key=True)
    region: str = Field(sa_column_kwargs={"primary_key": True}, sa_type=_REGION)
    key: str = Field(primary_key=True, max_length=120)
    n: int = Field(sa_type=sa.BigInteger)


class SummaryFlowRow(FlowColumns, table=True):
    """A region's flow of one period."""

    __tablename__ = "summary_flows"


class SummaryAgencyFlowRow(FlowColumns, table=True):
    """A flow of one period counted per agency (keys `a|<agency>|<field>|...`: the matrix's and the SPM report's
    referral counts of each agency within a region), kept apart from the regions' own flows, which they outnumber
    seven to one, so that a region's read never scans them."""

    __tablename__ = "summary_agency_flows"


class SummaryHistogramRow(Table, table=True):
    """A duration histogram of one period (`<flow>|rh`, `<flow>|ch`: a referral's response and completion hours,
    a region's or an agency's), one row: `buckets` in ascending order (contributions.bucket_of) and the count of
    each in `counts`, none of them zero. One row per histogram, not per bucket, so a read's rows do not grow as
    the durations spread over more buckets (they were nine flow rows in ten of a province)."""

    __tablename__ = "summary_histograms"

    level: int = Field(primary_key=True)
    span: str = Field(primary_key=True, max_length=1)
    month: date = Field(primary_key=True)
    region: str = Field(sa_column_kwargs={"primary_key": True}, sa_type=_REGION)
    key: str = Field(primary_key=True, max_length=120)
    buckets: list[int] = Field(sa_column=sa.Column(ARRAY(sa.Integer), nullable=False))
    counts: list[int] = Field(sa_column=sa.Column(ARRAY(sa.BigInteger), nullable=False))


class SummaryAnswerRow(Table, table=True):
    """A stock on a held reference day, summed per age band (summaries/answers.py): `n` is what the stock rows
    with `month` up to `as_of`'s month give for the members born in `band` on `as_of` ('all': every row), so a
    read of a held day is one range of these rows. Rows at zero are dropped."""

    __tablename__ = "summary_answers"

    level: int = Field(primary_key=True)
    as_of: date = Field(primary_key=True)
    region: str = Field(sa_column_kwargs={"primary_key": True}, sa_type=_REGION)
    key: str = Field(primary_key=True, max_length=120)
    band: str = Field(primary_key=True, max_length=20)
    n: int = Field(sa_type=sa.BigInteger)


class SummaryAnswerDay(Table, table=True):
    """A reference day whose answers are held (every closed month's last day of the kept window, and today);
    kept across rebuilds, which derive the answers of these days again."""

    __tablename__ = "summary_answer_days"

    as_of: date = Field(primary_key=True)
    derived_at: datetime = Field(sa_column=timestamptz())


#: The summaries, emptied with the projections by a rebuild from the topics (their handlers refill them).
SUMMARIES: tuple[str, ...] = ("summary_stocks", "summary_flows", "summary_agency_flows", "summary_histograms",
                              "summary_answers")
PROJECTIONS = PROJECTIONS + SUMMARIES
