"""Projections: a consumer's handlers as one class that declares its topics and, per event type of the catalogue, a
handler receiving the event's data already parsed into the type's model (the shape of pyeventsourcing's
`Projection`, kept small). Configuration (settings, a clock) goes through the constructor.

    class RegistryEvents(Projection):
        topics = (REGISTRY_TOPIC,)

        @handles(reg.POSYANDU_REGISTERED, reg.POSYANDU_UPDATED)
        async def on_posyandu(self, session: AsyncSession, event: CloudEvent, data: reg.PosyanduData) -> None: ...

        @handles(hh.MEMBER_ADDED, batched=True)  # order-tolerant upserts: all of a fetch's events of the type at once
        async def on_members(self, session: AsyncSession, events: list[Received[hh.MemberData]]) -> None: ...

The runner (shared/consumer.py) takes `handlers()`, a table by event type; the inbox, retries and dead letters stay
its business. Data that does not fit the type's model raises pydantic's ValidationError, which the runner
dead-letters at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import Batched, Handler
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField

D = TypeVar("D", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

#: The attribute `handles` marks a method with: its event types and whether it takes them batched.
_MARK = "__projection_handles__"


@dataclass(frozen=True, slots=True)
class Received(Generic[D]):
    """One event of a batch, with its data parsed."""

    event: CloudEvent
    data: D


def handles(*event_types: EventType[Any], batched: bool = False) -> Callable[[F], F]:
    """Declares the method the handler of these event types: `(session, event, data)`, or with `batched`
    `(session, [Received(event, data), ...])`, given every claimed event of one type in a fetch at once (only for
    order-tolerant handlers, e.g. upserts where the newest version wins: shared/consumer.py `Batched`)."""
    if not event_types:
        raise ValueError("handles() needs at least one event type")

    def mark(method: F) -> F:
        setattr(method, _MARK, (event_types, batched))
        return method

    return mark


class Projection:
    """The handlers of one topic family for a consumer group; subclasses set `topics` and mark handlers."""

    #: The topics its event types travel on (the subscription subscribes to them).
    topics: ClassVar[tuple[str, ...]] = ()

    def handlers(self) -> dict[str, Handler | Batched]:
        """The runner's table: each declared event type's name to its handler, the data parsed by the catalogue."""
        table: dict[str, Handler | Batched] = {}
        for name in dir(type(self)):
            marked = getattr(getattr(type(self), name), _MARK, None)
            if marked is None:
                continue
            event_types, batched = marked
            method = getattr(self, name)
            for event_type in event_types:
                if event_type.name in table:
                    raise ValueError(f"{type(self).__name__} handles {event_type.name} twice")
                missing = set(_topics_of(event_type)) - set(self.topics)
                if missing:
                    raise ValueError(f"{type(self).__name__} handles {event_type.name} but does not declare its "
                                     f"topics {sorted(missing)}")
                table[event_type.name] = _batched(event_type, method) if batched else _single(event_type, method)
        return table


def _topics_of(event_type: EventType[Any]) -> Iterable[str]:
    if isinstance(event_type.topic, str):
        return [event_type.topic]
    return [event_type.topic_for(field) for field in SpmField]


def _single(event_type: EventType[D], method: Callable[..., Any]) -> Handler:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await method(session, event, event_type.parse(event))

    return handle


def _batched(event_type: EventType[D], method: Callable[..., Any]) -> Batched:
    async def apply(session: AsyncSession, events: list[CloudEvent]) -> None:
        await method(session, [Received(event, event_type.parse(event)) for event in events])

    return Batched(apply)


def handlers_of(*projections: Projection) -> dict[str, Handler | Batched]:
    """The table of several projections of one group; an event type handled by two is refused."""
    table: dict[str, Handler | Batched] = {}
    for projection in projections:
        for name, handler in projection.handlers().items():
            if name in table:
                raise ValueError(f"{name} is handled by two projections of one group")
            table[name] = handler
    return table


def topics_of(*projections: Projection) -> list[str]:
    """The topics of several projections, each once, in the order declared."""
    return list(dict.fromkeys(topic for projection in projections for topic in projection.topics))
