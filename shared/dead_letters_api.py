"""The admin API of a consuming service's dead letters (shared/dead_letters.py), mounted by create_service_app for
every service with consumer groups: `/api/v1/dead-letters`."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

from shared import dead_letters as dl
from shared.auth import Admin
from shared.db import SessionDep
from shared.errors import ValidationFailed
from shared.iso_dates import iso_or_none
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of


def _plausible(value: datetime) -> datetime:
    # Far years would overflow on the way to UTC and the database: a 422, never a 500.
    if not 1900 <= value.year <= 9998:
        raise ValueError("a time between the years 1900 and 9998")
    return value


#: A filter time: ISO 8601 with its offset, years 1900-9998.
FilterTime = Annotated[AwareDatetime, iso_or_none, AfterValidator(_plausible)]
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The dead letter's id")]
INSPECT_PURPOSE = "dead-letter inspection by an operator"


class DeadLetter(BaseModel):
    id: int
    consumer_group: str
    topic: str = Field(description="The topic the record came from")
    kafka_partition: int
    kafka_offset: int
    event_id: uuid.UUID | None = Field(description="Null when the record is not a valid CloudEvent")
    event_type: str | None
    event_time: datetime | None
    error: str = Field(description="Why it was parked (or why its last replay failed); no field values")
    dead_lettered_at: datetime
    state: dl.State
    replay_attempts: int
    replayed_at: datetime | None
    replay_outcome: dl.Outcome | None
    discarded_at: datetime | None
    discarded_by: str | None
    discard_reason: str | None


class DeadLetterDetail(DeadLetter):
    event: dict[str, Any] | None = Field(description="The CloudEvent as JSON (personal data: the read is audited)")
    raw: str | None = Field(description="The record's bytes as text when it is not a valid CloudEvent")


class ReplayResult(BaseModel):
    id: int
    outcome: dl.Outcome
    error: str | None = Field(default=None, description="The new error when the replay failed again")


class ReplayReport(BaseModel):
    items: list[ReplayResult]
    counts: dict[dl.Outcome, int]


class ReplayFilter(BaseModel):
    """Which pending dead letters to replay (all of them match every given part); at most `limit` at a time."""

    model_config = {"extra": "forbid"}

    group: str | None = Field(default=None, max_length=200)
    event_type: str | None = Field(default=None, min_length=1, max_length=200)
    error: str | None = Field(default=None, min_length=1, max_length=200,
                              description="Case-insensitive substring of the error")
    since: FilterTime | None = Field(default=None, description="Dead-lettered at or after")
    until: FilterTime | None = Field(default=None, description="Dead-lettered before")
    limit: int = Field(default=100, ge=1, le=500)

    @model_validator(mode="after")
    def _ordered(self) -> ReplayFilter:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class DiscardBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=3, max_length=500, description="Why the record is not replayed (kept, audited)")


def _group_checked(group: str | None, groups: list[str], where: Literal["query", "body"]) -> None:
    if group is not None and group not in groups:
        raise ValidationFailed(f"Unknown consumer group {group[:50]!r}; this service's groups: {', '.join(groups)}.",
                               errors=[{"field": f"{where}.group", "message": "not a consumer group of this service",
                                        "type": "value_error"}])


def _range_checked(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("since must be before until.", errors=[
            {"field": "query.until", "message": "must be after since", "type": "value_error"}])


def dead_letters_router(service: str, handlers: dl.GroupHandlers) -> APIRouter:
    groups = list(handlers)
    router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

    @router.get("", response_model=Page[DeadLetter], summary="List dead-lettered records (admin)")
    async def list_dead_letters(
        session: SessionDep, _: Admin, limit: LimitParam = 50, cursor: CursorParam = None,
        group: Annotated[str | None, Query(max_length=200)] = None,
        state: dl.State | None = None,
        event_type: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        error: Annotated[str | None, Query(min_length=1, max_length=200,
                                           description="Case-insensitive substring of the error")] = None,
        since: Annotated[FilterTime | None, Query(description="Dead-lettered at or after")] = None,
        until: Annotated[FilterTime | None, Query(description="Dead-lettered before")] = None,
    ) -> Any:
        _group_checked(group, groups, "query")
        _range_checked(since, until)
        after = decode_cursor(cursor, int)
        rows = await dl.list_dead_letters(session, groups, dl.Filter(group, state, event_type, error, since, until),
                                          limit=limit, before_id=after[0] if after else None)
        items, next_cursor = page_of(rows, limit, lambda r: (r["id"],))
        return {"items": items, "next_cursor": next_cursor}

    @router.get("/{dead_letter_id}", response_model=DeadLetterDetail,
                summary="Inspect one dead letter with its body (admin; the read is audited)")
    async def get_dead_letter(dead_letter_id: DeadLetterId, session: SessionDep, principal: Admin) -> Any:
        row = await dl.inspect(session, principal, groups, dead_letter_id, purpose=INSPECT_PURPOSE)
        event, raw = dl.body_of(row)
        return {**row, "event": event, "raw": raw}

    @router.post("/{dead_letter_id}/replay", response_model=ReplayResult,
                 responses={409: {"description": "Discarded, or not a valid event"}},
                 summary="Replay one dead letter through its handler and inbox (admin)")
    async def replay_dead_letter(dead_letter_id: DeadLetterId, session: SessionDep, principal: Admin) -> Any:
        result = await dl.replay(session, principal, handlers, dead_letter_id)
        await dl.refresh_depth(session, service, groups)
        return asdict(result)

    @router.post("/replay", response_model=ReplayReport,
                 summary="Replay the pending dead letters matching a filter (admin)")
    async def replay_dead_letters(body: ReplayFilter, session: SessionDep, principal: Admin) -> Any:
        _group_checked(body.group, groups, "body")
        flt = dl.Filter(body.group, None, body.event_type, body.error, body.since, body.until)
        results = await dl.replay_matching(session, principal, handlers, flt, limit=body.limit)
        await dl.refresh_depth(session, service, groups)
        counts = {o: sum(r.outcome is o for r in results) for o in dl.Outcome}
        return {"items": [asdict(r) for r in results], "counts": counts}

    @router.post("/{dead_letter_id}/discard", response_model=DeadLetter,
                 responses={409: {"description": "Not pending (already replayed or discarded)"}},
                 summary="Discard a pending dead letter with a reason (admin; kept and audited)")
    async def discard_dead_letter(dead_letter_id: DeadLetterId, body: DiscardBody, session: SessionDep,
                                  principal: Admin) -> Any:
        row = await dl.discard(session, principal, groups, dead_letter_id, reason=body.reason)
        await dl.refresh_depth(session, service, groups)
        return row

    return router
