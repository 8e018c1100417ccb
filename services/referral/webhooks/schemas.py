"""The webhook API's bodies and views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events import referral as ev
from shared.iso_dates import IsoDateTime

#: The events an agency may subscribe to: every event a referral change writes (the field topics' types).
WEBHOOK_EVENT_TYPES = tuple(t.name for t in (
    ev.REFERRAL_CREATED, ev.REFERRAL_ROUTED, ev.REFERRAL_STATUS_CHANGED, ev.REFERRAL_REASSIGNED,
    ev.REFERRAL_NEED_RESOLVED, ev.REFERRAL_OVERDUE, ev.REFERRAL_ESCALATED, ev.REFERRAL_SNAPSHOT))


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: For an admin: the agency it registers for; an agency's token may omit it (its own).
    agency_id: uuid.UUID | None = None
    url: str = Field(min_length=8, max_length=2000, description="https://... (plain http only outside production)")
    event_types: list[str] = Field(min_length=1, max_length=len(WEBHOOK_EVENT_TYPES),
                                   description=f"Any of {', '.join(WEBHOOK_EVENT_TYPES)}")

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        if unknown := [t for t in value if t not in WEBHOOK_EVENT_TYPES]:
            raise ValueError(f"not referral event types: {', '.join(unknown)}")
        return sorted(set(value))


class SubscriptionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    #: The fields whose referrals it receives (the registering token's, or all the agency's for an admin).
    spm_fields: list[str]
    url: str
    event_types: list[str]
    #: `active`, or `disabled` by the failure budget (see `disabled_reason`; `POST .../enable` resumes).
    status: str
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    #: Until then the previous secret signs as well (after a rotation).
    previous_secret_expires_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SubscriptionWithSecret(SubscriptionPublic):
    """The answer of a creation or a rotation: the only time the secret is shown."""

    secret: str


class Attempt(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: uuid.UUID
    event_type: str
    referral_id: uuid.UUID
    #: `pending`, `succeeded` or `failed` (given up after the retry schedule).
    status: str
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None
    attempts: list[Attempt]


class ReplayBody(BaseModel):
    """Re-send one delivery, or every delivery created since a time (each with its original id and body)."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    since: IsoDateTime | None = None

    @model_validator(mode="after")
    def _one(self) -> ReplayBody:
        if (self.delivery_id is None) == (self.since is None):
            raise ValueError("give exactly one of delivery_id and since")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a time zone")
        return self


class ReplayResult(BaseModel):
    replayed: int


def view(row: Any) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(row)
