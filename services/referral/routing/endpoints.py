"""HTTP routes of routing rules administration (admin only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from services.referral.routing import rules
from services.referral.routing.schemas import RuleBody, RulePublic
from services.referral.tables import RoutingRule
from shared.auth import Admin
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.topics import SpmField
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/routing-rules", tags=["routing"])

RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_PRECONDITION: dict[int | str, dict[str, Any]] = {412: {"description": "If-Match mismatch"},
                                                  404: {"description": "No such rule"}}


def _load(*, for_update: bool) -> Callable[..., Awaitable[RoutingRule]]:
    async def load(rule_id: RuleId, session: SessionDep, _: Admin) -> RoutingRule:
        return await rules.get_rule(session, rule_id, for_update=for_update)

    return load


#: The rule of a route's id (404 otherwise), for an admin; locked for a route that changes it.
Rule = Annotated[RoutingRule, Depends(_load(for_update=False))]
LockedRule = Annotated[RoutingRule, Depends(_load(for_update=True))]


def _response(row: RoutingRule, status_code: int = 200) -> Response:
    return json_response(rules.rule_view(row), status_code,
                         headers={"ETag": etag(row.version), "Location": f"/api/v1/routing-rules/{row.id}"})


@router.get("", response_model=Page[RulePublic], summary="Routing rules, by field and category")
async def list_rules(session: SessionDep, _: Admin, limit: LimitParam = 50, cursor: CursorParam = None,
                     field: SpmField | None = None,
                     category: Annotated[str | None, Query(max_length=60)] = None) -> Any:
    after = decode_cursor(cursor, int)
    rows = await rules.list_rules(session, spm_field=field, category=category, after=after[0] if after else None,
                                  limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page(items=[rules.rule_view(r) for r in items], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=RulePublic,
             summary="Create a routing rule (steers referrals routed from now on)",
             responses={409: {"description": "A rule of this scope exists"}})
async def create_rule(body: RuleBody, session: SessionDep, principal: Admin, now: NowDep,
                      idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _response(await rules.create_rule(session, principal, body, now), 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /routing-rules",
                            payload=body, create=create)


@router.get("/{rule_id}", response_model=RulePublic, summary="A routing rule (ETag)")
async def get_rule(rule: Rule) -> Response:
    return _response(rule)


@router.put("/{rule_id}", response_model=RulePublic, responses=_PRECONDITION,
            summary="Replace a routing rule (honours If-Match)")
async def update_rule(rule: LockedRule, body: RuleBody, session: SessionDep, principal: Admin, now: NowDep,
                      if_match: IfMatch = None) -> Response:
    return _response(await rules.update_rule(session, principal, rule, body, if_match, now))


@router.delete("/{rule_id}", status_code=204, responses=_PRECONDITION, summary="Delete a routing rule (If-Match)")
async def delete_rule(rule: LockedRule, session: SessionDep, principal: Admin, if_match: IfMatch = None) -> Response:
    await rules.delete_rule(session, principal, rule, if_match)
    return Response(status_code=204)
