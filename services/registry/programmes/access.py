"""Who may read and who may change a programme, each rule once as a query on the programmes table (single reads,
lists and changes all start from it).

Reads: admins and services all; agencies (opd and partners) the programmes of their token's fields; a pembina those
touching the region prefix; a kader those touching a village of the kader's posyandu. Changes: an agency its own
programmes in the fields its token carries; admins any.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.registry.access import holds
from services.registry.tables import Posyandu, Programme
from shared.auth import Principal, Role
from shared.errors import Forbidden


def _region_code() -> Any:
    return sa.func.unnest(Programme.region_codes).table_valued("code").render_derived(name="r")


def touching(prefix: str) -> sa.ColumnElement[bool]:
    """Programmes with a region code that holds or lies within the prefix (a province-wide programme touches its
    villages; a village programme touches its regency)."""
    code = _region_code()
    return sa.exists(select(sa.literal(1)).select_from(code).where(
        sa.or_(sa.func.starts_with(code.c.code, prefix), sa.func.starts_with(prefix, code.c.code))))


def _in_fields(principal: Principal) -> sa.ColumnElement[bool]:
    return col(Programme.spm_field).in_(sorted(f.value for f in principal.fields))


def _readable(principal: Principal) -> sa.ColumnElement[bool]:
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return sa.true()
    if principal.role is Role.OPD:
        return _in_fields(principal)
    if principal.role is Role.PEMBINA:
        return touching(principal.region_prefix) if principal.region_prefix is not None else sa.false()
    # A kader: a region code of the programme holds the village of one of the kader's posyandu.
    code = _region_code()
    return sa.exists(select(sa.literal(1)).select_from(code).join(
        Posyandu, sa.func.starts_with(col(Posyandu.village_code), code.c.code)).where(
        col(Posyandu.id).in_(sorted(principal.posyandu_ids))))


def readable_statement(principal: Principal) -> SelectOfScalar[Programme]:
    """The programmes `principal` may read."""
    return select(Programme).where(_readable(principal))


def writable_statement(principal: Principal) -> SelectOfScalar[Programme]:
    """The programmes `principal` may change."""
    if principal.role is Role.ADMIN:
        return select(Programme)
    if principal.role is Role.OPD and principal.agency_id is not None:
        return select(Programme).where(Programme.agency_id == principal.agency_id, _in_fields(principal))
    return select(Programme).where(sa.false())


async def require_reader(session: AsyncSession, principal: Principal, programme: Programme) -> None:
    """403 unless `principal` may read the programme."""
    if not await holds(session, readable_statement(principal).where(Programme.id == programme.id)):
        raise Forbidden("The programme lies outside the caller's fields or region.")


async def require_writer(session: AsyncSession, principal: Principal, programme: Programme) -> None:
    """403 unless `principal` may change the programme."""
    if not await holds(session, writable_statement(principal).where(Programme.id == programme.id)):
        raise Forbidden("Only the programme's own agency (in the programme's field) and admins may change it.")
