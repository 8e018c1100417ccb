"""Referral payloads: create, lifecycle action bodies, the public view, history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from services.referral.referrals.lifecycle import Status
from shared.categories import Urgency
from shared.events.topics import SpmField

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class ReferralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    household_id: uuid.UUID
    member_id: uuid.UUID | None = None
    spm_field: SpmField
    category: str = Field(max_length=60, description="A category of DOMAIN.md §6 of the same field")
    urgency: Urgency | None = Field(default=None, description="Defaults to the category's urgency")
    reason: Text
    draft: bool = Field(default=False, description="Keep it as a draft to submit later")


class ActionBody(BaseModel):
    """The body of a lifecycle action: a reason, an outcome or a target agency, as the action needs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Text | None = None
    outcome: Text | None = None
    agency_id: uuid.UUID | None = Field(default=None, description="reassign: the agency to hand the referral to")


class MemberDetails(BaseModel):
    """The member's identity, read from the household service for the assigned agency (never sent in events)."""

    member_id: uuid.UUID
    nik: str | None
    name: str


class ReferralPublic(BaseModel):
    id: uuid.UUID
    need_id: uuid.UUID | None
    household_id: uuid.UUID
    member_id: uuid.UUID | None
    member_nik_masked: str | None
    posyandu_id: uuid.UUID
    village_code: str
    spm_field: SpmField
    category: str
    urgency: Urgency
    origin: str
    status: Status
    #: None while no agency is responsible (unrouted; visible to the pembina).
    agency_id: uuid.UUID | None
    unrouted: bool
    reason: str | None
    outcome: str | None
    #: The need's evidence, for the posyandu side and the assigned agency only.
    evidence: dict[str, Any] | None
    respond_by: datetime | None
    complete_by: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None
    overdue: bool
    overdue_at: datetime | None
    escalated_at: datetime | None
    escalated_to_agency_id: uuid.UUID | None
    need_resolved_at: datetime | None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class ReferralDetail(ReferralPublic):
    #: For the assigned agency: the member's NIK and name from the household service; None when not available.
    member_details: MemberDetails | None = None
    #: Why member_details is None for the assigned agency (household-level referral, service unreachable, ...).
    member_details_unavailable: str | None = None


class TransitionPublic(BaseModel):
    action: str
    from_status: Status | None
    to_status: Status
    from_agency_id: uuid.UUID | None
    to_agency_id: uuid.UUID | None
    actor: str
    actor_role: str
    #: The agency an opd actor acted for (the assigned one, or the province agency it escalated to).
    actor_agency_id: uuid.UUID | None = None
    reason: str | None
    outcome: str | None
    at: datetime


class RepublishResult(BaseModel):
    spm_field: SpmField
    count: int
