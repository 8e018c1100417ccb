"""Handler for posyandu.audit.v1: another service's read of a household's data joins the household's access log.

The entry lands in this service's audit_log, in the shape of its own reads (at the time of the read, not of its
arrival), with an origin row naming the reading service and the reader's organisation. The runner's inbox, written
in the same transaction, makes a redelivered event a no-op.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.tables import AccessLogOrigin, metadata
from shared.events.audit import HOUSEHOLD_READ, HouseholdReadData
from shared.events.envelope import CloudEvent
from shared.events.topics import AUDIT_TOPIC
from shared.projection import Projection, handles
from shared.tables import audit_log


class AuditEvents(Projection):
    topics = (AUDIT_TOPIC,)

    @handles(HOUSEHOLD_READ)
    async def on_household_read(self, session: AsyncSession, event: CloudEvent, data: HouseholdReadData) -> None:
        audit_id = await session.scalar(sa.insert(audit_log).values(
            at=data.read_at, actor=data.actor, actor_role=data.actor_role, action="read",
            resource_type=data.resource_type, resource_id=data.resource_id, subject_ref=str(data.household_id),
            purpose=data.purpose, request_id=data.request_id, fields=data.fields).returning(audit_log.c.id))
        await session.execute(sa.insert(metadata.tables[AccessLogOrigin.__tablename__]).values(
            audit_id=audit_id, event_id=event.id, service=event.source.removeprefix("/posyandu/"),
            actor_agency_id=data.actor_agency_id, actor_agency_name=data.actor_agency_name,
            actor_posyandu_ids=data.actor_posyandu_ids))
