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

from services.referral.tables import KnownAgency, RoutingRule


def coverage(*, spm_field: str, village_code: str) -> dict[str, sa.ColumnElement[bool]]:
    """The conditions for an agency to hold a referral of the field in the village, by name: active, of the
    field, and with a jurisdiction (its regency/city, or its province) that holds the village."""
    return {
        "active": col(KnownAgency.status) == "active",
        "field": col(KnownAgency.spm_fields).any_() == spm_field,
        "jurisdiction": sa.or_(sa.and_(col(KnownAgency.level) == "regency",
                                       col(KnownAgency.jurisdiction_code) == village_code[:4]),
                               sa.and_(col(KnownAgency.level) == "province",
                                       col(KnownAgency.jurisdiction_code) == village_code[:2])),
    }


def responsible_agency_query(*, spm_field: str, village_code: str, category: str | None = None) -> sa.Select[Any]:
    """The responsible agency (at most one row), rule or default in one statement: the candidates of the matching
    rules and those of the registry's rule are ranked together, every rule's before any default."""
    covered = coverage(spm_field=spm_field, village_code=village_code).values()
    by_rule = (
        sa.select(col(KnownAgency.id).label("agency_id"), sa.literal(0).label("tier"),
                  sa.cast(col(RoutingRule.category).is_(None), sa.Integer).label("generic"),
                  (-sa.func.length(sa.func.coalesce(col(RoutingRule.region_prefix), ""))).label("narrowness"))
        .join(RoutingRule, sa.or_(col(RoutingRule.agency_id) == col(KnownAgency.id),
                                  col(RoutingRule.agency_level) == col(KnownAgency.level)))
        .where(*covered, col(RoutingRule.spm_field) == spm_field,
               sa.or_(col(RoutingRule.category).is_(None), col(RoutingRule.category) == category),
               sa.or_(col(RoutingRule.region_prefix).is_(None),
                      sa.literal(village_code).startswith(col(RoutingRule.region_prefix))))
    )
    by_default = (
        sa.select(col(KnownAgency.id).label("agency_id"), sa.literal(1).label("tier"),
                  sa.case((col(KnownAgency.level) == "regency", 0), else_=1).label("generic"),
                  sa.literal(0).label("narrowness"))
        .where(*covered)
    )
    ranked = sa.union_all(by_rule, by_default).subquery("ranked")
    return (select(KnownAgency).join(ranked, ranked.c.agency_id == col(KnownAgency.id))
            .order_by(ranked.c.tier, ranked.c.generic, ranked.c.narrowness, col(KnownAgency.registered_at),
                      col(KnownAgency.id))
            .limit(1))


async def responsible_agency(session: AsyncSession, *, spm_field: str, village_code: str,
                             category: str | None = None) -> KnownAgency | None:
    """The active agency responsible for the referral, or None (the referral stays unrouted)."""
    query = responsible_agency_query(spm_field=spm_field, village_code=village_code, category=category)
    return (await session.execute(query)).scalars().first()


async def province_agency(session: AsyncSession, *, spm_field: str, village_code: str) -> KnownAgency | None:
    """The field's province-level agency for the village: where an overdue referral escalates."""
    query = (select(KnownAgency)
             .where(*coverage(spm_field=spm_field, village_code=village_code).values(),
                    col(KnownAgency.level) == "province")
             .order_by(col(KnownAgency.registered_at), col(KnownAgency.id)).limit(1))
    return (await session.execute(query)).scalars().first()


async def unmet_coverage(session: AsyncSession, agency_id: uuid.UUID, *, spm_field: str,
                         village_code: str) -> list[str] | None:
    """The conditions of `coverage` that an agency fails for (field, village): [] when it may hold the referral,
    None when the agency is unknown here."""
    conditions = coverage(spm_field=spm_field, village_code=village_code)
    row = (await session.execute(sa.select(*(c.label(name) for name, c in conditions.items()))
                                 .where(col(KnownAgency.id) == agency_id))).mappings().first()
    return None if row is None else [name for name in conditions if not row[name]]
