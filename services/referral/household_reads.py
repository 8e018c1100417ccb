"""The audit of a read of a household's personal data (a referral's evidence, free text, notes, history, the
member's NIK): the referral service's own audit row, and the same entry as an event for the household's access
log, written through the outbox in the request's transaction, so the household learns of every read that happened
and of none that was rolled back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.tables import KnownAgency
from shared.audit import record_read
from shared.auth import Principal
from shared.events.audit import HOUSEHOLD_READ, HouseholdReadData
from shared.observability import request_id_var
from shared.outbox import publish


@dataclass(frozen=True)
class HouseholdReader:
    """The caller of a request, with the name of its agency (looked up once per request, for the family's report)."""

    principal: Principal
    agency_name: str | None

    @classmethod
    async def of(cls, session: AsyncSession, principal: Principal) -> HouseholdReader:
        agency = await session.get(KnownAgency, principal.agency_id) if principal.agency_id is not None else None
        return cls(principal, agency.name if agency is not None else None)

    async def record(self, session: AsyncSession, *, household_id: uuid.UUID, village_code: str, resource_type: str,
                     resource_id: uuid.UUID, purpose: str, fields: list[str], now: datetime) -> None:
        """Audit one read of the household's data here and tell the household service about it."""
        await record_read(session, self.principal, resource_type=resource_type, resource_id=str(resource_id),
                          subject_ref=str(household_id), purpose=purpose, fields=fields)
        p = self.principal
        data = HouseholdReadData(
            household_id=household_id, read_at=now, actor=p.sub, actor_role=p.role.value, actor_agency_id=p.agency_id,
            actor_agency_name=self.agency_name, actor_posyandu_ids=sorted(p.posyandu_ids),
            resource_type=resource_type, resource_id=str(resource_id), fields=fields, purpose=purpose,
            request_id=request_id_var.get())
        await publish(session, HOUSEHOLD_READ, data, subject=str(household_id), regioncode=village_code)
