"""Handlers for posyandu.registry.v1: the agencies routing chooses from. A changed agency first gives up the open
referrals it may no longer hold (deactivated, a field or a region lost), then takes the waiting ones it now covers.
Partner organisations (kind `partner`: Baznas, Kemenag, BKKBN, ...) are not kept: they take no referrals, neither
by routing nor by reassignment or escalation (their kind is fixed at registration)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.referrals.service import reroute_from, route_waiting
from services.referral.settings import ReferralSettings
from services.referral.tables import KnownAgency, metadata
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC
from shared.projection import Projection, handles
from shared.versioned import upsert_newer


class RegistryEvents(Projection):
    topics = (REGISTRY_TOPIC,)

    def __init__(self, settings: ReferralSettings) -> None:
        self.settings = settings

    @handles(reg.AGENCY_REGISTERED, reg.AGENCY_UPDATED, reg.AGENCY_DEACTIVATED)
    async def on_agency(self, session: AsyncSession, event: CloudEvent, data: reg.AgencyData) -> None:
        if data.kind is reg.AgencyKind.PARTNER:
            return
        # The registered event's time stands for "registered at" (routing's tie-break); an older or repeated
        # version never overwrites a newer one.
        applied = await upsert_newer(session, metadata.tables[KnownAgency.__tablename__], {
            "id": data.agency_id, "registered_at": event.time, "name": data.name, "level": data.level.value,
            "jurisdiction_code": data.jurisdiction_code, "spm_fields": [f.value for f in data.spm_fields],
            "status": data.status.value, "version": data.version}, insert_only=("registered_at",))
        if not applied:
            return
        agency = await session.get(KnownAgency, data.agency_id, populate_existing=True)
        assert agency is not None
        now = self.settings.clock()
        await reroute_from(session=session, agency=agency, now=now)
        await route_waiting(session=session, agency=agency, now=now)
