"""Handlers for posyandu.registry.v1: the agencies routing chooses from. A changed agency first gives up the open
referrals it may no longer hold (deactivated, a field or a region lost), then takes the waiting ones it now covers.
Partner organisations (kind `partner`: Baznas, Kemenag, BKKBN, ...) are not kept: they take no referrals, neither
by routing nor by reassignment or escalation (their kind is fixed at registration)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.referrals.service import reroute_from, route_waiting
from services.referral.settings import ReferralSettings
from services.referral.tables import KnownAgency, metadata
from shared.consumer import Handler
from shared.events import registry as reg
from shared.events.envelope import CloudEvent


def handlers(settings: ReferralSettings) -> dict[str, Handler]:
    async def on_agency(session: AsyncSession, event: CloudEvent) -> None:
        data = reg.AgencyData.model_validate(event.data)
        if data.kind is reg.AgencyKind.PARTNER:
            return
        table = metadata.tables[KnownAgency.__tablename__]
        values = {"name": data.name, "level": data.level.value, "jurisdiction_code": data.jurisdiction_code,
                  "spm_fields": [f.value for f in data.spm_fields], "status": data.status.value,
                  "version": data.version}
        # The registered event's time stands for "registered at" (routing's tie-break); an older or repeated
        # version never overwrites a newer one.
        applied = await session.execute(
            insert(table).values(id=data.agency_id, registered_at=event.time, **values)
            .on_conflict_do_update(index_elements=["id"], set_=values, where=table.c.version < data.version)
            .returning(table.c.id))
        if applied.first() is None:
            return
        agency = await session.get(KnownAgency, data.agency_id, populate_existing=True)
        assert agency is not None
        now = settings.clock()
        await reroute_from(session=session, agency=agency, now=now)
        await route_waiting(session=session, agency=agency, now=now)

    return {event_type.name: on_agency
            for event_type in (reg.AGENCY_REGISTERED, reg.AGENCY_UPDATED, reg.AGENCY_DEACTIVATED)}
