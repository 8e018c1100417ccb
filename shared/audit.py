"""The audit log of reads of personal data and of administrative changes (who, what, when, why), and the
admin's query of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.observability import request_id_var
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.tables import audit_log


async def record_read(session: AsyncSession, principal: Principal, *, resource_type: str, resource_id: str,
                      purpose: str, subject_ref: str | None = None, fields: list[str] | None = None) -> None:
    """Write one audit row for a read of personal data, in the request's transaction."""
    await record(session, principal, action="read", resource_type=resource_type, resource_id=resource_id,
                 purpose=purpose, subject_ref=subject_ref, fields=fields)


async def record(session: AsyncSession, principal: Principal, *, action: str, resource_type: str, resource_id: str,
                 purpose: str, subject_ref: str | None = None, fields: list[str] | None = None) -> None:
    """Write one audit row (a read, or an administrative change such as `create`, `update`, `delete`), in the
    request's transaction."""
    await session.execute(sa.insert(audit_log).values(
        actor=principal.sub, actor_role=principal.role.value, action=action, resource_type=resource_type,
        resource_id=resource_id, subject_ref=subject_ref, purpose=purpose, request_id=request_id_var.get(),
        fields=fields))


async def record_reads(session: AsyncSession, principal: Principal, *, resource_type: str,
                       resources: Sequence[tuple[str, str | None]], purpose: str,
                       fields: list[str] | None = None) -> None:
    """Write one audit row per resource read (its id, its subject), all in one multi-row INSERT: a list's reads
    cost one statement, not one per row."""
    if not resources:
        return
    await session.execute(sa.insert(audit_log).values([
        {"actor": principal.sub, "actor_role": principal.role.value, "action": "read", "resource_type": resource_type,
         "resource_id": resource_id, "subject_ref": subject_ref, "purpose": purpose,
         "request_id": request_id_var.get(), "fields": fields} for resource_id, subject_ref in resources]))


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    resource_type: str
    resource_id: str
    subject_ref: str | None
    purpose: str
    request_id: str | None
    fields: list[str] | None


def audit_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/audit-log", tags=["audit"])

    @router.get("", response_model=Page[AuditEntry], summary="Query the audit log (admin)")
    async def list_audit_entries(
        session: SessionDep,
        _: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
        limit: LimitParam = 50,
        cursor: CursorParam = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        resource_type: Annotated[str | None, Query(max_length=100)] = None,
        resource_id: Annotated[str | None, Query(max_length=200)] = None,
        subject_ref: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
        for column, value in ((audit_log.c.actor, actor), (audit_log.c.resource_type, resource_type),
                              (audit_log.c.resource_id, resource_id), (audit_log.c.subject_ref, subject_ref)):
            if value is not None:
                query = query.where(column == value)
        if (after := decode_cursor(cursor, int)) is not None:
            query = query.where(audit_log.c.id < after[0])
        rows = (await session.execute(query)).mappings().all()
        items, next_cursor = page_of(list(rows), limit, lambda r: (r["id"],))
        return {"items": [dict(r) for r in items], "next_cursor": next_cursor}

    return router
