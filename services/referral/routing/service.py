"""Routing: the responsible agency for (field, category, village), from the local read model of the registry's
agencies and the admin's routing rules.

First the routing rules (`routing_rules`): of the rules for the field that match the referral's category (or
name none) and whose region prefix holds its village (or that name none), the most specific with an agency that
`coverage` admits decides: a rule naming the category before one that does not, then the longest region prefix;
the rule's target is one agency (`agency_id`) or the agency of a level (`agency_level`, the earliest registered).
Without such a rule, the registry's rule: the village's regency/city agency for the field first, then its
province's; among equals the earliest registered. No synchronous call on the hot path: agencies arrive as
registry events. Which agencies may hold a referral at all (routing, reassignment, escalation) is one rule,
`coverage`: a rule only chooses among the agencies it admits.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.tables import KnownAgency, RoutingRule, metadata

#: The routing statements are built once, here, with their values as bound parameters (`route_parameters`), so
#: that routing a referral neither rebuilds nor recompiles them (SQLAlchemy's compiled cache keys on the statement).
_agencies = metadata.tables[KnownAgency.__tablename__]
_rules = metadata.tables[RoutingRule.__tablename__]


def route_parameters(*, spm_field: str, village_code: str, category: str | None = None) -> dict[str, Any]:
    """The values the routing statements bind (`RESPONSIBLE_AGENCY`, `RESPONSIBLE_AGENCY_ID`, `PROVINCE_AGENCY`)."""
    return {"spm_field": spm_field, "village_code": village_code, "regency_code": village_code[:4],
            "province_code": village_code[:2], "category": category}


def _coverage(spm_field: Any, regency_code: Any, province_code: Any) -> dict[str, sa.ColumnElement[bool]]:
    return {
        "active": _agencies.c.status == "active",
        "field": _agencies.c.spm_fields.any_() == spm_field,
        "jurisdiction": sa.or_(sa.and_(_agencies.c.level == "regency", _agencies.c.jurisdiction_code == regency_code),
                               sa.and_(_agencies.c.level == "province",
                                       _agencies.c.jurisdiction_code == province_code)),
    }


def coverage(*, spm_field: str, village_code: str) -> dict[str, sa.ColumnElement[bool]]:
    """The conditions for an agency to hold a referral of the field in the village, by name: active, of the
    field, and with a jurisdiction (its regency/city, or its province) that holds the village."""
    return _coverage(spm_field, village_code[:4], village_code[:2])


#: `coverage` with the values of `route_parameters` bound.
_COVERED = _coverage(*(sa.bindparam(name, type_=sa.String) for name in ("spm_field", "regency_code", "province_code")))


def _ranked(village_code: sa.ColumnElement[str] | None) -> sa.Subquery:
    """The candidates of the matching rules and those of the registry's rule, ranked together (every rule's before
    any default); lower is better by (tier, generic, narrowness). The village is bound (`route_parameters`) unless
    given as an expression."""
    if village_code is None:
        village_code, covered = sa.bindparam("village_code", type_=sa.String), _COVERED
    else:
        covered = _coverage(sa.bindparam("spm_field", type_=sa.String), sa.func.left(village_code, 4),
                            sa.func.left(village_code, 2))
    by_rule = (
        sa.select(_agencies.c.id.label("agency_id"), sa.literal(0).label("tier"),
                  sa.cast(_rules.c.category.is_(None), sa.Integer).label("generic"),
                  (-sa.func.length(sa.func.coalesce(_rules.c.region_prefix, ""))).label("narrowness"))
        .join(_rules, sa.or_(_rules.c.agency_id == _agencies.c.id, _rules.c.agency_level == _agencies.c.level))
        .where(*covered.values(), _rules.c.spm_field == sa.bindparam("spm_field", type_=sa.String),
               sa.or_(_rules.c.category.is_(None), _rules.c.category == sa.bindparam("category", type_=sa.String)),
               sa.or_(_rules.c.region_prefix.is_(None), village_code.startswith(_rules.c.region_prefix)))
    )
    by_default = (
        sa.select(_agencies.c.id.label("agency_id"), sa.literal(1).label("tier"),
                  sa.case((_agencies.c.level == "regency", 0), else_=1).label("generic"),
                  sa.literal(0).label("narrowness"))
        .where(*covered.values())
    )
    return sa.union_all(by_rule, by_default).subquery("ranked")


def _responsible(*columns: Any, village_code: sa.ColumnElement[str] | None = None) -> sa.Select[Any]:
    ranked = _ranked(village_code)
    return (sa.select(*columns).join(ranked, ranked.c.agency_id == _agencies.c.id)
            .order_by(ranked.c.tier, ranked.c.generic, ranked.c.narrowness, _agencies.c.registered_at,
                      _agencies.c.id)
            .limit(1))


def responsible_agency_id_in(village_code: sa.ColumnElement[str]) -> sa.Select[Any]:
    """`RESPONSIBLE_AGENCY_ID` for the village an expression gives (a scalar subquery of a statement that reads the
    household too): binds `route_parameters` but the village's. Build it once, as the statements here are."""
    return _responsible(_agencies.c.id, village_code=village_code)


#: The responsible agency (at most one row), rule or default in one statement; binds `route_parameters`.
RESPONSIBLE_AGENCY = _responsible(KnownAgency)
#: Its id alone, as a subquery's row (the SLA terms read it with the deadlines, sla/service.py).
RESPONSIBLE_AGENCY_ID = _responsible(_agencies.c.id)
#: The field's province-level agency for the village; binds `route_parameters`.
PROVINCE_AGENCY = (select(KnownAgency).where(*_COVERED.values(), _agencies.c.level == "province")
                   .order_by(_agencies.c.registered_at, _agencies.c.id).limit(1))


async def responsible_agency(session: AsyncSession, *, spm_field: str, village_code: str,
                             category: str | None = None) -> KnownAgency | None:
    """The active agency responsible for the referral, or None (the referral stays unrouted)."""
    parameters = route_parameters(spm_field=spm_field, village_code=village_code, category=category)
    return (await session.execute(RESPONSIBLE_AGENCY, parameters)).scalars().first()


async def province_agency(session: AsyncSession, *, spm_field: str, village_code: str) -> KnownAgency | None:
    """The field's province-level agency for the village: where an overdue referral escalates."""
    parameters = route_parameters(spm_field=spm_field, village_code=village_code)
    return (await session.execute(PROVINCE_AGENCY, parameters)).scalars().first()


async def unmet_coverage(session: AsyncSession, agency_id: uuid.UUID, *, spm_field: str,
                         village_code: str) -> list[str] | None:
    """The conditions of `coverage` that an agency fails for (field, village): [] when it may hold the referral,
    None when the agency is unknown here."""
    conditions = coverage(spm_field=spm_field, village_code=village_code)
    row = (await session.execute(sa.select(*(c.label(name) for name, c in conditions.items()))
                                 .where(col(KnownAgency.id) == agency_id))).mappings().first()
    return None if row is None else [name for name in conditions if not row[name]]
