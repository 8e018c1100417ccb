"""Which agency a write about agency-owned data (programmes, target figures) is for, and whether the caller may.

An agency (OPD or partner organisation) acts for itself only, in the fields its token carries; an admin acts for
the agency it names. Either way the agency must exist and be active. One rule for every agency-owned resource.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.tables import Agency
from shared.auth import Principal, Role
from shared.errors import Forbidden, ValidationFailed
from shared.events.topics import SpmField


async def acting_agency(session: AsyncSession, principal: Principal, *, named: uuid.UUID | None, field: SpmField,
                        what: str, lock: bool = False) -> Agency:
    """The active agency `principal` writes `what` (e.g. "programmes") for: its own, or for an admin the one
    `named`; `lock` takes the agency row's lock, serialising concurrent first writes of one key."""
    if principal.role is Role.OPD:
        if named is not None and named != principal.agency_id:
            raise Forbidden(f"An agency writes its own {what} only.")
        if field not in principal.fields:
            raise Forbidden(f"The token does not carry the field {field.value}.")
        agency_id = principal.agency_id
    elif principal.role is Role.ADMIN:
        if named is None:
            raise ValidationFailed(f"An admin names the agency the {what} belong to.",
                                   errors=[{"field": "agency_id", "message": "required for an admin"}])
        agency_id = named
    else:
        raise Forbidden(f"Only agencies (OPD and partner organisations) and admins write {what}.")
    agency = await session.get(Agency, agency_id, with_for_update=lock)
    if agency is None or agency.status != "active":
        raise ValidationFailed(f"{agency_id} is not an active agency.",
                               errors=[{"field": "agency_id", "message": "unknown or inactive agency"}])
    return agency
