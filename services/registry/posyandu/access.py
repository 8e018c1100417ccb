"""Who may reach a posyandu beyond the public directory, each rule once as a query on the posyandu table.

Managing (register, change, deactivate, staff with cadres): admins every posyandu, a pembina those in the villages
of the region prefix. Caring for it (read its cadres' names and phones, set its opening days): those managers and
the posyandu's own kader. The directory itself (name, village, service days, schedule) is public to every caller.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.registry.access import holds
from services.registry.tables import Posyandu
from shared.auth import Principal, Role
from shared.errors import Forbidden


def _oversees(principal: Principal, village_code: sa.ColumnElement[str] | Mapped[str]) -> sa.ColumnElement[bool]:
    if principal.role is Role.ADMIN:
        return sa.true()
    if principal.role is Role.PEMBINA and principal.region_prefix is not None:
        return sa.func.starts_with(village_code, principal.region_prefix)
    return sa.false()


def managed_statement(principal: Principal) -> SelectOfScalar[Posyandu]:
    """The posyandu `principal` manages."""
    return select(Posyandu).where(_oversees(principal, col(Posyandu.village_code)))


def cared_for_statement(principal: Principal) -> SelectOfScalar[Posyandu]:
    """The posyandu `principal` cares for: those it manages, and a kader's own."""
    own = col(Posyandu.id).in_(sorted(principal.posyandu_ids)) if principal.role is Role.KADER else sa.false()
    return select(Posyandu).where(sa.or_(_oversees(principal, col(Posyandu.village_code)), own))


def _outside(principal: Principal) -> Forbidden:
    return Forbidden(f"You may manage posyandu only within your region ({principal.region_prefix}).")


async def require_manager(session: AsyncSession, principal: Principal, posyandu: Posyandu) -> None:
    """403 unless `principal` manages the posyandu."""
    if not await holds(session, managed_statement(principal).where(Posyandu.id == posyandu.id)):
        raise _outside(principal)


async def require_manager_of_village(session: AsyncSession, principal: Principal, village_code: str) -> None:
    """403 unless `principal` would manage a posyandu in this village (one registered or moved there): the
    managing rule applied to the code itself."""
    if not await session.scalar(sa.select(_oversees(principal, sa.literal(village_code, sa.String)))):
        raise _outside(principal)


async def require_carer(session: AsyncSession, principal: Principal, posyandu: Posyandu, refusal: str) -> None:
    """403 with `refusal` unless `principal` cares for the posyandu."""
    if not await holds(session, cared_for_statement(principal).where(Posyandu.id == posyandu.id)):
        raise Forbidden(refusal)
