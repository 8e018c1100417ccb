"""Posyandu and their cadres: registration, updates, deactivation, queries; each change an event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.posyandu.access import require_carer, require_manager, require_manager_of_village
from services.registry.posyandu.schemas import CadreCreate, CadreUpdate, PosyanduCreate, PosyanduUpdate
from services.registry.regions.service import require_village
from services.registry.tables import Cadre, Posyandu, Region
from shared.audit import record_read
from shared.auth import Principal
from shared.concurrency import check_if_match
from shared.conflicts import flush_unique
from shared.errors import Conflict, NotFound
from shared.events import registry as ev
from shared.events.catalogue import EventType
from shared.events.topics import SpmField
from shared.outbox import publish


class PosyanduNotFound(NotFound):
    pass


class CadreNotFound(NotFound):
    pass


def posyandu_data(p: Posyandu) -> ev.PosyanduData:
    return ev.PosyanduData(posyandu_id=p.id, code=p.code, name=p.name, village_code=p.village_code,
                           status=ev.Status(p.status), service_days=p.service_days, latitude=p.latitude,
                           longitude=p.longitude, version=p.version)


def cadre_data(c: Cadre) -> ev.CadreData:
    return ev.CadreData(cadre_id=c.id, posyandu_id=c.posyandu_id, duties=[SpmField(d) for d in c.duties],
                        status=ev.Status(c.status), since=c.since)


async def _emit(session: AsyncSession, event_type: EventType, p: Posyandu) -> None:
    await publish(session, event_type, posyandu_data(p), subject=str(p.id), regioncode=p.village_code)


async def register(*, session: AsyncSession, principal: Principal, payload: PosyanduCreate,
                   now: datetime) -> Posyandu:
    """Registers a posyandu in an active village within the caller's region (409 for a code taken, also by a
    concurrent registration)."""
    await require_manager_of_village(session, principal, payload.village_code)
    await require_village(session=session, code=payload.village_code)
    posyandu = Posyandu(**payload.model_dump(), created_by=principal.sub, created_at=now, updated_at=now)
    session.add(posyandu)
    await flush_unique(session, conflict=f"A posyandu with the code {payload.code} exists already.")
    await _emit(session, ev.POSYANDU_REGISTERED, posyandu)
    return posyandu


async def get(*, session: AsyncSession, posyandu_id: uuid.UUID, for_update: bool = False) -> Posyandu:
    """Gets a posyandu by its id."""
    posyandu = await session.get(Posyandu, posyandu_id, with_for_update=for_update)
    if posyandu is None:
        raise PosyanduNotFound(f"No posyandu has the id {posyandu_id}.")
    return posyandu


async def update(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, payload: PosyanduUpdate,
                 if_match: str | None, now: datetime) -> Posyandu:
    """Updates a posyandu's details (optimistic concurrency on its version); a move stays within the caller's
    region."""
    await require_manager(session, principal, posyandu)
    check_if_match(if_match, posyandu.version)
    changes = payload.model_dump(exclude_unset=True)
    if "village_code" in changes and changes["village_code"] != posyandu.village_code:
        await require_manager_of_village(session, principal, changes["village_code"])
        await require_village(session=session, code=changes["village_code"])
    if not {k: v for k, v in changes.items() if getattr(posyandu, k) != v}:
        return posyandu
    for key, value in changes.items():
        setattr(posyandu, key, value)
    posyandu.version += 1
    posyandu.updated_at = now
    await session.flush()
    await _emit(session, ev.POSYANDU_UPDATED, posyandu)
    return posyandu


async def deactivate(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, if_match: str | None,
                     now: datetime) -> Posyandu:
    """Marks a posyandu inactive (kept, with its history)."""
    await require_manager(session, principal, posyandu)
    check_if_match(if_match, posyandu.version)
    if posyandu.status == "inactive":
        return posyandu
    posyandu.status = "inactive"
    posyandu.version += 1
    posyandu.updated_at = now
    await session.flush()
    await _emit(session, ev.POSYANDU_DEACTIVATED, posyandu)
    return posyandu


def _filtered(query: Any, *, region: str | None, status: str | None, field: str | None) -> Any:
    if region is not None:
        query = query.where(col(Posyandu.village_code).startswith(region))
    if status is not None:
        query = query.where(Posyandu.status == status)
    if field is not None:
        query = query.where(sa.exists().where(col(Cadre.posyandu_id) == col(Posyandu.id), col(Cadre.status) == "active",
                                              col(Cadre.duties).any_() == field))
    return query


async def list_posyandu(*, session: AsyncSession, region: str | None, status: str | None, field: str | None,
                        q: str | None, after: tuple[str, uuid.UUID] | None, limit: int) -> list[Posyandu]:
    """Posyandu by region prefix, status, SPM field of their cadres, or name, in (code, id) order."""
    query = _filtered(select(Posyandu), region=region, status=status, field=field)
    if q:
        query = query.where(sa.func.lower(Posyandu.name).contains(q.lower(), autoescape=True))
    if after is not None:
        query = query.where(sa.tuple_(Posyandu.code, Posyandu.id) > sa.tuple_(*after))
    query = query.order_by(col(Posyandu.code), col(Posyandu.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def counts_by_region(*, session: AsyncSession, region: str | None, status: str | None,
                           field: str | None) -> list[tuple[str, str, int]]:
    """Posyandu counted per region one level below `region` (per province when none is given)."""
    child_length = {None: 2, 2: 4, 4: 6, 6: 10, 10: 10}[len(region) if region else None]
    child = sa.func.substr(Posyandu.village_code, 1, child_length).label("region_code")
    query = _filtered(select(child, sa.func.count().label("n")), region=region, status=status, field=field)
    counted = query.group_by(child).subquery()
    rows = await session.execute(
        sa.select(counted.c.region_code, sa.func.coalesce(Region.name, ""), counted.c.n)
        .join(Region, Region.code == counted.c.region_code, isouter=True).order_by(counted.c.region_code))
    return [(code, name, n) for code, name, n in rows.all()]


async def assign_cadre(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, payload: CadreCreate,
                       now: datetime) -> Cadre:
    """Assigns a cadre (kader) to an active posyandu."""
    await require_manager(session, principal, posyandu)
    if posyandu.status != "active":
        raise Conflict("Cadres can only be assigned to an active posyandu.")
    cadre = Cadre(posyandu_id=posyandu.id, name=payload.name, phone=payload.phone, email=payload.email,
                  duties=sorted({d.value for d in payload.duties}), since=payload.since, created_at=now,
                  updated_at=now)
    session.add(cadre)
    await session.flush()
    await publish(session, ev.CADRE_ASSIGNED, cadre_data(cadre), subject=str(posyandu.id),
                  regioncode=posyandu.village_code)
    return cadre


async def get_cadre(*, session: AsyncSession, posyandu_id: uuid.UUID, cadre_id: uuid.UUID) -> Cadre:
    """Gets a cadre of a posyandu."""
    cadre = await session.get(Cadre, cadre_id, with_for_update=True)
    if cadre is None or cadre.posyandu_id != posyandu_id:
        raise CadreNotFound(f"No cadre {cadre_id} at posyandu {posyandu_id}.")
    return cadre


async def list_cadres(*, session: AsyncSession, principal: Principal, posyandu: Posyandu,
                      include_inactive: bool) -> list[Cadre]:
    """The cadres of a posyandu, for those who care for it; names and phone numbers: the read is audited."""
    await require_carer(session, principal, posyandu,
                        "Only the posyandu's kader, its pembina and admins may list its cadres.")
    query = select(Cadre).where(Cadre.posyandu_id == posyandu.id).order_by(col(Cadre.name), col(Cadre.id))
    if not include_inactive:
        query = query.where(Cadre.status == "active")
    cadres = list((await session.execute(query)).scalars().all())
    await record_read(session, principal, resource_type="posyandu.cadres", resource_id=str(posyandu.id),
                      purpose="list the cadres of a posyandu", fields=["name", "phone", "email"])
    return cadres


async def update_cadre(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, cadre_id: uuid.UUID,
                       payload: CadreUpdate, if_match: str | None, now: datetime) -> Cadre:
    """Updates a cadre's contact or duties."""
    await require_manager(session, principal, posyandu)
    cadre = await get_cadre(session=session, posyandu_id=posyandu.id, cadre_id=cadre_id)
    check_if_match(if_match, cadre.version)
    changes = payload.model_dump(exclude_unset=True)
    if "duties" in changes:
        changes["duties"] = sorted({str(d) for d in changes["duties"]})
    for key, value in changes.items():
        setattr(cadre, key, value)
    cadre.version += 1
    cadre.updated_at = now
    await session.flush()
    await publish(session, ev.CADRE_UPDATED, cadre_data(cadre), subject=str(posyandu.id),
                  regioncode=posyandu.village_code)
    return cadre


async def unassign_cadre(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, cadre_id: uuid.UUID,
                         now: datetime) -> Cadre:
    """Ends a cadre's assignment (kept as inactive)."""
    await require_manager(session, principal, posyandu)
    cadre = await get_cadre(session=session, posyandu_id=posyandu.id, cadre_id=cadre_id)
    if cadre.status == "inactive":
        return cadre
    cadre.status = "inactive"
    cadre.version += 1
    cadre.updated_at = now
    await session.flush()
    await publish(session, ev.CADRE_UNASSIGNED, cadre_data(cadre), subject=str(posyandu.id),
                  regioncode=posyandu.village_code)
    return cadre
