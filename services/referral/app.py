"""The referral service (port 8003): referrals, their routing, lifecycle, SLA clocks, notes and outcomes."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from services.referral.consumers.household import HouseholdEvents
from services.referral.consumers.registry import RegistryEvents
from services.referral.household_api import HouseholdApi
from services.referral.notes.endpoints import router as notes_router
from services.referral.referrals.endpoints import inbox_router
from services.referral.referrals.endpoints import router as referrals_router
from services.referral.routing.endpoints import router as routing_rules_router
from services.referral.settings import ReferralSettings
from services.referral.sla.endpoints import router as sla_router
from services.referral.sla.service import sla_loop
from services.referral.webhooks.delivery import webhook_loop
from services.referral.webhooks.endpoints import router as webhooks_router
from shared.audit import audit_router
from shared.events.asyncapi import asyncapi_document
from shared.service import ServiceSpec, Subscription, create_service_app


def spec(settings: ReferralSettings) -> ServiceSpec:
    return ServiceSpec(
        name="referral",
        title="Posyandu referrals",
        description="Referrals of households' needs to the responsible agency (OPD): routing, a FHIR Task-aligned "
                    "lifecycle, SLA clocks with escalation, notes and outcomes. Every change is an event on "
                    "posyandu.referral.<field>.v1.",
        # Notes first: `POST /referrals/{id}/notes` must not be taken for the lifecycle action route.
        routers=[notes_router, referrals_router, inbox_router, sla_router, routing_rules_router, webhooks_router,
                 audit_router()],
        # One consumer group over the registry (agencies) and household (needs, households) topics.
        subscriptions=[Subscription.of("referral", RegistryEvents(settings), HouseholdEvents(settings))],
        background=[sla_loop, webhook_loop],
    )


def create_app(settings: ReferralSettings | None = None, *,
               household_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or ReferralSettings()
    app = create_service_app(spec(settings), settings)
    # Injectable, so that tests can point it at the in-process household app.
    app.state.household_api = HouseholdApi(settings.household_api_url,
                                           timeout=settings.household_api_timeout_seconds,
                                           transport=household_transport)
    return app


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of the referral's events (checked in as services/referral/asyncapi.json)."""
    return asyncapi_document("referral", consumes=spec(ReferralSettings()).consumed_topics)
