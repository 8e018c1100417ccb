"""The household service (port 8002): households, members, per-field profiles and detected needs."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI

from services.household.access_log.endpoints import router as access_log_router
from services.household.beneficiaries.endpoints import PROGRAMMES_PATH
from services.household.beneficiaries.endpoints import router as beneficiaries_router
from services.household.beneficiaries.projection import ProgrammeEvents
from services.household.consumers.audit import AuditEvents
from services.household.consumers.referrals import ReferralEvents
from services.household.consumers.registry import RegistryEvents
from services.household.due.endpoints import router as due_router
from services.household.duplicates.endpoints import router as duplicates_router
from services.household.households.endpoints import router as households_router
from services.household.immunization.endpoints import fhir_router as immunization_fhir_router
from services.household.immunization.endpoints import router as immunization_router
from services.household.immunization.endpoints import schedule_router as immunization_schedule_router
from services.household.imports.endpoints import IMPORT_PATH
from services.household.imports.endpoints import jobs_router as import_jobs_router
from services.household.imports.endpoints import router as import_router
from services.household.life_events.endpoints import router as life_events_router
from services.household.measurements.endpoints import router as measurements_router
from services.household.needs.sweep import need_sweep_loop
from services.household.profiles.endpoints import router as profiles_router
from services.household.profiles.schemas import PROFILE_MODELS
from services.household.republish import router as republish_router
from services.household.sessions.endpoints import router as sessions_router
from services.household.settings import HouseholdSettings
from services.household.visits.endpoints import router as visits_router
from shared.audit import audit_router
from shared.clock import Clock, system_clock
from shared.events.asyncapi import asyncapi_document
from shared.service import ServiceSpec, Subscription, create_service_app


def subscriptions(clock: Clock = system_clock) -> list[Subscription]:
    """One consumer group over the registry topic and every referral topic (DESIGN.md §1), and the internal audit
    topic: the other services' reads of a household, for its access log. Programmes (their beneficiary lists) and
    agencies' jurisdictions (the aid reports' access) come from the registry topic too."""
    return [Subscription.of("household", RegistryEvents(clock=clock), ProgrammeEvents(), ReferralEvents(),
                            AuditEvents())]


SPEC = ServiceSpec(
    name="household",
    title="Posyandu households",
    description="Households (kartu keluarga) and their members, a profile per SPM field, and the needs the "
                "rules detect. Every change is an event on posyandu.household.v1.",
    routers=[import_router, households_router, profiles_router, measurements_router, duplicates_router,
             audit_router(), life_events_router, access_log_router, sessions_router, visits_router,
             immunization_schedule_router, immunization_router, immunization_fhir_router, due_router,
             import_jobs_router, beneficiaries_router, republish_router],
    # The profile PUT validates its body by field, so it documents the six profile schemas itself.
    extra_schemas=list(PROFILE_MODELS.values()),
    subscriptions=subscriptions(),
    # The daily sweep of the age- and time-dependent need rules (once a day across replicas).
    background=[need_sweep_loop],
)


def spec(settings: HouseholdSettings) -> ServiceSpec:
    """The service as configured: the bulk import's body limit is a setting, the consumers use its clock."""
    # A beneficiary list's multipart body: the file plus its part headers.
    return dataclasses.replace(SPEC, subscriptions=subscriptions(settings.clock),
                               body_limits={IMPORT_PATH: settings.household_import_max_bytes,
                                            PROGRAMMES_PATH: settings.household_beneficiary_list_max_bytes
                                            + 64 * 1024})


def create_app(settings: HouseholdSettings | None = None) -> FastAPI:
    settings = settings or HouseholdSettings()
    return create_service_app(spec(settings), settings)


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of the household's events (checked in as services/household/asyncapi.json)."""
    return asyncapi_document(SPEC.name, consumes=SPEC.consumed_topics)
