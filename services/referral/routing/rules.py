"""Routing rules administration (admin only; each change audited). A rule steers referrals routed after it;
referrals already with an agency keep it. The referral event catalogue has no rule aggregate: no event is sent,
the audit log is the record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.routing.schemas import RuleBody, RulePublic
from services.referral.tables import KnownAgency, RoutingRule
from shared.audit import record
from shared.auth import Principal
from shared.concurrency import check_if_match
from shared.conflicts import unique_or_conflict
from shared.errors import NotFound, ValidationFailed
from shared.events.registry import AgencyLevel
from shared.events.topics import SpmField

PURPOSE = "routing administration"


def rule_view(row: RoutingRule) -> RulePublic:
    assert row.id is not None
    return RulePublic(id=row.id, spm_field=SpmField(row.spm_field), category=row.category,
                      region_prefix=row.region_prefix,
                      agency_level=AgencyLevel(row.agency_level) if row.agency_level else None,
                      agency_id=row.agency_id, version=row.version, updated_at=row.updated_at)


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": "agency_id", "message": message}])


async def _check_target(session: AsyncSession, body: RuleBody) -> None:
    """A named agency must be known, serve the field and have a jurisdiction that meets the region: a rule that
    can never route anything is a mistake to refuse now, not to discover when referrals go elsewhere."""
    if body.agency_id is None:
        return
    agency = await session.get(KnownAgency, body.agency_id)
    if agency is None:
        raise _invalid(f"There is no agency {body.agency_id} known to this service.")
    if body.spm_field.value not in agency.spm_fields:
        raise _invalid(f"Agency {agency.id} does not serve {body.spm_field.value}.")
    region, jurisdiction = body.region_prefix or "", agency.jurisdiction_code
    if not (region.startswith(jurisdiction) or jurisdiction.startswith(region)):
        raise _invalid(f"Agency {agency.id}'s jurisdiction {jurisdiction} does not meet region {region}.")


def _apply(row: RoutingRule, body: RuleBody, now: datetime) -> None:
    row.spm_field, row.category, row.region_prefix = body.spm_field.value, body.category, body.region_prefix
    row.agency_level = body.agency_level.value if body.agency_level else None
    row.agency_id, row.updated_at = body.agency_id, now


async def _flush_scope(session: AsyncSession, row: RoutingRule) -> None:
    # The unique scope index decides, also between two concurrent requests: a clash is the caller's 409.
    async with unique_or_conflict(session, "A rule for this field, category and region exists already; update it."):
        session.add(row)


async def list_rules(session: AsyncSession, *, spm_field: SpmField | None, category: str | None,
                     after: int | None, limit: int) -> list[RoutingRule]:
    query = select(RoutingRule).order_by(col(RoutingRule.id)).limit(limit + 1)
    if spm_field is not None:
        query = query.where(RoutingRule.spm_field == spm_field.value)
    if category is not None:
        query = query.where(RoutingRule.category == category)
    if after is not None:
        query = query.where(col(RoutingRule.id) > after)
    return list((await session.execute(query)).scalars().all())


async def get_rule(session: AsyncSession, rule_id: int, *, for_update: bool = False) -> RoutingRule:
    """Load a rule (locked when it is about to change); 404 otherwise."""
    row = await session.get(RoutingRule, rule_id, with_for_update=for_update)
    if row is None:
        raise NotFound(f"There is no routing rule {rule_id}.")
    return row


async def create_rule(session: AsyncSession, principal: Principal, body: RuleBody, now: datetime) -> RoutingRule:
    await _check_target(session, body)
    row = RoutingRule(spm_field=body.spm_field.value)
    _apply(row, body, now)
    await _flush_scope(session, row)
    await record(session, principal, action="create", resource_type="routing.rule", resource_id=str(row.id),
                 purpose=PURPOSE, fields=sorted(body.model_fields_set | {"spm_field"}))
    return row


async def update_rule(session: AsyncSession, principal: Principal, row: RoutingRule, body: RuleBody,
                      if_match: str | None, now: datetime) -> RoutingRule:
    """Replaces a rule (its row locked by the caller), audited."""
    check_if_match(if_match, row.version)
    await _check_target(session, body)
    before = rule_view(row).model_dump(exclude={"id", "version", "updated_at"})
    _apply(row, body, now)
    row.version += 1
    await _flush_scope(session, row)
    after = rule_view(row).model_dump(exclude={"id", "version", "updated_at"})
    await record(session, principal, action="update", resource_type="routing.rule", resource_id=str(row.id),
                 purpose=PURPOSE, fields=sorted(k for k in after if after[k] != before[k]))
    return row


async def delete_rule(session: AsyncSession, principal: Principal, row: RoutingRule, if_match: str | None) -> None:
    """Deletes a rule (its row locked by the caller), audited."""
    check_if_match(if_match, row.version)
    await session.delete(row)
    await record(session, principal, action="delete", resource_type="routing.rule", resource_id=str(row.id),
                 purpose=PURPOSE)
