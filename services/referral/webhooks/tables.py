"""The webhook tables: an agency's subscriptions, and one delivery row per event and subscription (the log)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from services.referral.tables import Table
from shared.db import timestamptz, utc_now


class WebhookSubscription(Table, table=True):
    """Where an agency wants its referrals' events: an HTTPS URL, the event types, the signing secret(s).

    After a rotation the previous secret still signs until `previous_secret_expires_at` (two signatures).
    `status` is `active` or `disabled`; the failure budget disables it (with `disabled_reason`)."""

    __tablename__ = "webhook_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    #: The fields whose referrals it receives: those of the registering agency token (all the agency's, for an
    #: admin). Only a token holding all of them may read or manage it.
    spm_fields: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(default_factory=list, sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    status: str = Field(default="active", max_length=10)
    disabled_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    disabled_reason: str | None = Field(default=None, max_length=300)
    #: Failed attempts since the last success (any message): one half of the failure budget.
    consecutive_failures: int = 0
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())


class WebhookDelivery(Table, table=True):
    """One event for one subscription, written in the transaction of the referral change; `id` orders a referral's
    events. `status`: `pending` (due at `next_attempt_at`), `succeeded`, `failed` (given up after the schedule).
    `attempts` is the log of every try: time, HTTP status or error."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
        sa.Index("ix_webhook_deliveries_log", "subscription_id", "id"),
        sa.Index("ix_webhook_deliveries_order", "subscription_id", "referral_id", "id",
                 postgresql_where=sa.text("status = 'pending'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscriptions.id")
    #: The event's id: the stable `webhook-id` of every attempt and replay.
    event_id: uuid.UUID
    event_type: str = Field(max_length=100)
    referral_id: uuid.UUID
    #: The exact body sent (signed as is).
    body: str
    status: str = Field(default="pending", max_length=10)
    next_attempt_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    #: When the current round of tries began (creation or the last replay): the retry schedule counts from here.
    round_started_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    round_attempts: int = 0
    attempts: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=sa.Column(JSONB, nullable=False, server_default="[]"))
    created_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    succeeded_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
