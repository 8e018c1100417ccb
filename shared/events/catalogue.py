"""The catalogue of event types: each type's name, typed data model, topic and publisher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

from shared.events.envelope import CloudEvent
from shared.events.personal_data import personal_attributes
from shared.events.topics import SpmField

RegionCodePresence = Literal["required", "optional", "absent"]
#: The data model of an event type.
D = TypeVar("D", bound=BaseModel)


@dataclass(frozen=True)
class EventType(Generic[D]):
    name: str
    data_model: type[D]
    publisher: str
    summary: str
    #: The topic, fixed, or chosen by the event's SPM field (referral events).
    topic: str | Callable[[SpmField], str]
    #: Whether its events carry the `regioncode` extension: DESIGN.md §2 wants it wherever the aggregate has a
    #: village; a region has one only if it is a village, an agency (its jurisdiction a regency or province) never.
    regioncode: RegionCodePresence = "required"

    @property
    def personal_data(self) -> list[str]:
        """The attributes of its data that are personal data (each attribute is marked, `personal_data.py`)."""
        return personal_attributes(self.data_model)

    @property
    def carries_spmfield(self) -> bool:
        """Referral events: the SPM field that chooses the topic travels as the `spmfield` extension too."""
        return not isinstance(self.topic, str)

    def topic_for(self, field: SpmField | None = None) -> str:
        if isinstance(self.topic, str):
            return self.topic
        if field is None:
            raise ValueError(f"{self.name} needs an SPM field to choose its topic")
        return self.topic(field)

    def new(self, data: D, *, subject: str, regioncode: str | None = None,
            spmfield: SpmField | None = None) -> CloudEvent:
        """An envelope for this type around typed data (checked against the catalogue's model): the one way an event
        is made, whether it is published (shared/outbox.py) or fed to a consumer in a test."""
        if not isinstance(data, self.data_model):
            raise TypeError(f"{self.name} carries {self.data_model.__name__}, not {type(data).__name__}")
        return CloudEvent(source=f"/posyandu/{self.publisher}", type=self.name, subject=subject,
                          data=data.model_dump(mode="json"), regioncode=regioncode, spmfield=spmfield)

    def parse(self, event: CloudEvent) -> D:
        """The event's data as this type's model (a pydantic ValidationError if it does not fit)."""
        return self.data_model.model_validate(event.data)


CATALOGUE: dict[str, EventType[BaseModel]] = {}


def register(name: str, data_model: type[D], *, publisher: str, topic: str | Callable[[SpmField], str],
             summary: str, regioncode: RegionCodePresence = "required") -> EventType[D]:
    if name in CATALOGUE:
        raise ValueError(f"event type {name} registered twice")
    event_type = EventType(name=name, data_model=data_model, publisher=publisher, summary=summary, topic=topic,
                           regioncode=regioncode)
    CATALOGUE[name] = event_type  # type: ignore[assignment]
    return event_type


def load_all() -> dict[str, EventType[BaseModel]]:
    """Import every module that registers event types, and return the whole catalogue."""
    from shared.events import audit, household, programmes, referral, registry  # noqa: F401

    return CATALOGUE
