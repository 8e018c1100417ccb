"""The registry service (port 8001): regions, posyandu with their cadres, and agencies (OPD)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.registry.agencies.endpoints import router as agencies_router
from services.registry.posyandu.endpoints import router as posyandu_router
from services.registry.programmes.endpoints import router as programmes_router
from services.registry.regions.endpoints import router as regions_router
from services.registry.republish import router as republish_router
from services.registry.schedule.endpoints import router as schedule_router
from services.registry.settings import RegistrySettings
from services.registry.spm.endpoints import router as spm_router
from shared.audit import audit_router
from shared.events.asyncapi import asyncapi_document
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="registry",
    title="Posyandu registry",
    description="Regions (wilayah), posyandu and their cadres, agencies (OPD) with their SPM fields, and the "
                "routing rule for referrals. Every change is an event on posyandu.registry.v1.",
    routers=[regions_router, posyandu_router, agencies_router, republish_router, audit_router(), schedule_router,
             spm_router, programmes_router],
    # The national region list is about 2.3 MB as CSV.
    body_limits={"/api/v1/regions/import": 64 * 1024 * 1024},
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or RegistrySettings())


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of the registry's events (checked in as services/registry/asyncapi.json)."""
    return asyncapi_document(SPEC.name, consumes=SPEC.consumed_topics)
