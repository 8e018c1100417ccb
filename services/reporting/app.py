"""The reporting service (port 8004): read-only indicator projections by region, period, field and agency."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.reporting.consumers import GROUP, all_handlers
from services.reporting.dashboard.endpoints import router as dashboard_router
from services.reporting.indicators.endpoints import router as indicators_router
from services.reporting.matrix.endpoints import router as matrix_router
from services.reporting.settings import ReportingSettings
from services.reporting.spm.endpoints import router as spm_router
from services.reporting.summaries.answers import answer_roll_loop
from services.reporting.tables import PLATFORM_TABLES
from shared.events.asyncapi import asyncapi_document
from shared.events.topics import ALL_TOPICS
from shared.service import ServiceSpec, Subscription, create_service_app


def spec() -> ServiceSpec:
    return ServiceSpec(
        name="reporting",
        title="Posyandu reporting",
        description="Indicators of the six SPM fields by region, period, field and agency, the cross-agency "
                    "matrix, CSV and Excel exports and a dashboard, from projections of every topic. No personal "
                    "data; small cells are suppressed for everyone but an admin.",
        routers=[indicators_router, matrix_router, dashboard_router, spm_router],
        publishes=False,
        platform_tables=PLATFORM_TABLES,
        # A projection: its lag costs nothing but freshness (target p99 <= 1 s), and rounds of events cost far less
        # than one at a time (at 250 ms its CPU per detected need fell from 10.4 to 1.7 ms, bench 4).
        subscriptions=[Subscription(group_id=GROUP, topics=list(ALL_TOPICS), handlers=all_handlers(), may_lag=True)],
        background=[answer_roll_loop],
    )


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    return create_service_app(spec(), settings or ReportingSettings())


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of the events the reporting service consumes (services/reporting/asyncapi.json)."""
    return asyncapi_document("reporting", consumes=spec().consumed_topics)
