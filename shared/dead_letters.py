"""Dead letters: what an operator does with the records the consumer runner parked (shared/consumer.py).

The runner writes each dead letter to `posyandu.dlq.<group>` (the contract for external tools) and to the
service's `dead_letters` table (shared/tables.py). Here an admin lists them, inspects one (its body is personal
data: the read is audited), replays one or a filtered set after the cause is fixed, or discards one with a reason
(kept, listed as discarded, audited). A replay goes through the group's handlers and inbox exactly as the runner
would (`apply_in`), so replaying an event that was applied meanwhile, or twice, changes nothing.

The API (shared/dead_letters_api.py) and the CLI (shared/dead_letters_cli.py) both call these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import audit
from shared.auth import Principal
from shared.consumer import Batched, Handler, apply_in, describe_error
from shared.errors import Conflict, NotFound, database_unavailable
from shared.events.envelope import CloudEvent
from shared.observability import CONSUMER_DEAD_LETTERS
from shared.tables import dead_letters

log = logging.getLogger(__name__)

#: The handlers of each consumer group of a service, by group id.
GroupHandlers = Mapping[str, Mapping[str, Handler | Batched]]

#: How often each replica recounts the dead letters for the depth gauge (another replica's changes show by then).
DEPTH_REFRESH_SECONDS = 30.0

RESOURCE = "dead_letter"


class State(StrEnum):
    PENDING = "pending"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class Outcome(StrEnum):
    """What a replay did: applied now, already applied (the inbox had the event), not an event type the group
    handles any more, or failed again (the record stays pending with the new error)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"


@dataclass(frozen=True)
class Filter:
    """Which dead letters to list or replay; every part optional. `error` is a case-insensitive substring."""

    group: str | None = None
    state: State | None = None
    event_type: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.group is not None:
            clauses.append(dead_letters.c.consumer_group == self.group)
        if self.state is not None:
            clauses.append(dead_letters.c.state == self.state.value)
        if self.event_type is not None:
            clauses.append(dead_letters.c.event_type == self.event_type)
        if self.error is not None:
            escaped = self.error.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(dead_letters.c.error.ilike(f"%{escaped}%", escape="\\"))
        if self.since is not None:
            clauses.append(dead_letters.c.dead_lettered_at >= self.since)
        if self.until is not None:
            clauses.append(dead_letters.c.dead_lettered_at < self.until)
        return clauses


@dataclass(frozen=True)
class Replayed:
    id: int
    outcome: Outcome
    error: str | None = None


#: The columns of a listed dead letter: everything but the record's key and body.
_SUMMARY = [c for c in dead_letters.c if c.name not in ("key", "payload")]


async def list_dead_letters(session: AsyncSession, groups: Sequence[str], flt: Filter, *, limit: int,
                            before_id: int | None = None) -> list[dict[str, Any]]:
    """The newest first, up to limit+1 (for the next page), of the service's groups only."""
    query = (sa.select(*_SUMMARY).where(dead_letters.c.consumer_group.in_(groups), *flt.where())
             .order_by(dead_letters.c.id.desc()).limit(limit + 1))
    if before_id is not None:
        query = query.where(dead_letters.c.id < before_id)
    return [dict(row) for row in (await session.execute(query)).mappings()]


async def _get(session: AsyncSession, groups: Sequence[str], dead_letter_id: int, *,
               for_update: bool = False) -> dict[str, Any]:
    query = sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id,
                                          dead_letters.c.consumer_group.in_(groups))
    row = (await session.execute(query.with_for_update() if for_update else query)).mappings().first()
    if row is None:
        raise NotFound(f"No dead letter {dead_letter_id} in this service.")
    return dict(row)


async def inspect(session: AsyncSession, principal: Principal, groups: Sequence[str], dead_letter_id: int, *,
                  purpose: str) -> dict[str, Any]:
    """One dead letter with its body; the read is audited (the body is personal data)."""
    row = await _get(session, groups, dead_letter_id)
    await audit.record_read(session, principal, resource_type=RESOURCE, resource_id=str(dead_letter_id),
                            purpose=purpose, fields=["payload"])
    return row


def body_of(row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The record's body as JSON when it is a CloudEvent, else its bytes as text (for a malformed record)."""
    try:
        return CloudEvent.from_bytes(row["payload"]).model_dump(mode="json"), None
    except (ValueError, ValidationError):
        return None, row["payload"].decode("utf-8", errors="replace")


async def replay(session: AsyncSession, principal: Principal, handlers: GroupHandlers,
                 dead_letter_id: int) -> Replayed:
    """Replays one dead letter through its group's handlers and inbox, in the caller's transaction."""
    row = await _get(session, list(handlers), dead_letter_id, for_update=True)
    return await _replay_row(session, principal, handlers, row)


async def replay_matching(session: AsyncSession, principal: Principal, handlers: GroupHandlers, flt: Filter, *,
                          limit: int) -> list[Replayed]:
    """Replays the pending dead letters that match (the filter's state is ignored; oldest first, at most `limit`;
    rows another replay holds are skipped), each in its own savepoint: one that fails again costs the others
    nothing."""
    pending = Filter(flt.group, State.PENDING, flt.event_type, flt.error, flt.since, flt.until)
    query = (sa.select(dead_letters)
             .where(dead_letters.c.consumer_group.in_(list(handlers)), *pending.where())
             .order_by(dead_letters.c.id).limit(limit).with_for_update(skip_locked=True))
    rows = [dict(row) for row in (await session.execute(query)).mappings()]
    return [await _replay_row(session, principal, handlers, row) for row in rows]


async def _replay_row(session: AsyncSession, principal: Principal, handlers: GroupHandlers,
                      row: dict[str, Any]) -> Replayed:
    if row["state"] == State.DISCARDED.value:
        raise Conflict(f"Dead letter {row['id']} was discarded; a discarded record is not replayed.")
    try:
        event = CloudEvent.from_bytes(row["payload"])
    except (ValueError, ValidationError) as exc:
        raise Conflict(f"Dead letter {row['id']} is not a valid event and cannot be replayed; discard it "
                       "with a reason instead.") from exc
    group_handlers = handlers[row["consumer_group"]]
    error: str | None = None
    if event.type not in group_handlers:
        outcome = Outcome.IGNORED
    else:
        try:
            async with session.begin_nested():
                applied = await apply_in(session, row["consumer_group"], group_handlers, [event])
            outcome = Outcome.APPLIED if applied else Outcome.DUPLICATE
        except Exception as exc:
            if database_unavailable(exc):
                raise  # not the record's fault: a 503, and the dead letter stays as it was
            outcome, error = Outcome.FAILED, describe_error(exc)[:2000]
    changes: dict[str, Any] = {"replay_attempts": dead_letters.c.replay_attempts + 1}
    if outcome is Outcome.FAILED:
        changes["error"] = error
    else:
        changes |= {"state": State.REPLAYED.value, "replayed_at": sa.func.now(), "replay_outcome": outcome.value}
    await session.execute(sa.update(dead_letters).where(dead_letters.c.id == row["id"]).values(**changes))
    await audit.record(session, principal, action="replay", resource_type=RESOURCE, resource_id=str(row["id"]),
                       purpose=f"dead-letter replay: {outcome.value}")
    log.info("dead letter replayed", extra={"dead_letter": row["id"], "group": row["consumer_group"],
                                            "outcome": outcome.value})
    return Replayed(row["id"], outcome, error)


async def discard(session: AsyncSession, principal: Principal, groups: Sequence[str], dead_letter_id: int, *,
                  reason: str) -> dict[str, Any]:
    """Marks a pending dead letter discarded with the reason; the row is kept, and the decision audited."""
    row = await _get(session, groups, dead_letter_id, for_update=True)
    if row["state"] != State.PENDING.value:
        raise Conflict(f"Dead letter {dead_letter_id} is {row['state']}; only a pending one can be discarded.")
    await session.execute(sa.update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(
        state=State.DISCARDED.value, discarded_at=sa.func.now(), discarded_by=principal.sub, discard_reason=reason))
    await audit.record(session, principal, action="discard", resource_type=RESOURCE, resource_id=str(dead_letter_id),
                       purpose=f"dead-letter discard: {reason}")
    return await _get(session, groups, dead_letter_id)


async def refresh_depth(session: AsyncSession, service: str, groups: Sequence[str]) -> None:
    """Sets the depth gauge of every group and state from the table (zero where there are none)."""
    counts = {(group, state): n for group, state, n in await session.execute(
        sa.select(dead_letters.c.consumer_group, dead_letters.c.state, sa.func.count())
        .where(dead_letters.c.consumer_group.in_(groups))
        .group_by(dead_letters.c.consumer_group, dead_letters.c.state))}
    for group in groups:
        for state in State:
            CONSUMER_DEAD_LETTERS.labels(service, group, state.value).set(counts.get((group, state.value), 0))


async def depth_loop(service: str, groups: Sequence[str], sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The background job of a consuming service: keep the depth gauge current."""
    while True:
        try:
            async with sessionmaker() as session:
                await refresh_depth(session, service, groups)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("dead-letter depth refresh failed; retrying", extra={"error": repr(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.sleep(DEPTH_REFRESH_SECONDS)
