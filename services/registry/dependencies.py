"""Load-or-404 dependencies: a route that takes an aggregate's id gets the loaded row (the service functions check
what the caller may do with it). A request that changes something gets the row locked for its transaction, so
concurrent changes of one aggregate queue instead of overwriting each other."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request

from services.registry.agencies.service import get as get_agency
from services.registry.posyandu.service import get as get_posyandu
from services.registry.programmes.service import load as load_programme
from services.registry.regions.service import get as get_region
from services.registry.tables import Agency, Posyandu, Programme, Region
from shared.db import SessionDep
from shared.region_codes import PLAIN_CODE_PATTERN


def _writes(request: Request) -> bool:
    return request.method not in ("GET", "HEAD")


async def posyandu_of_path(posyandu_id: uuid.UUID, session: SessionDep, request: Request) -> Posyandu:
    return await get_posyandu(session=session, posyandu_id=posyandu_id, for_update=_writes(request))


async def agency_of_path(agency_id: uuid.UUID, session: SessionDep, request: Request) -> Agency:
    return await get_agency(session=session, agency_id=agency_id, for_update=_writes(request))


async def programme_of_path(programme_id: uuid.UUID, session: SessionDep, request: Request) -> Programme:
    return await load_programme(session=session, programme_id=programme_id, for_update=_writes(request))


async def region_of_path(code: Annotated[str, Path(pattern=PLAIN_CODE_PATTERN, description="Region code without dots")],
                         session: SessionDep) -> Region:
    return await get_region(session=session, code=code)


#: The posyandu of `{posyandu_id}` (404 when there is none).
PathPosyandu = Annotated[Posyandu, Depends(posyandu_of_path)]
#: The agency of `{agency_id}`.
PathAgency = Annotated[Agency, Depends(agency_of_path)]
#: The programme of `{programme_id}`.
PathProgramme = Annotated[Programme, Depends(programme_of_path)]
#: The region of `{code}`.
PathRegion = Annotated[Region, Depends(region_of_path)]
