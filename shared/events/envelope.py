"""The CloudEvents 1.0 envelope (JSON structured mode) that every event travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.events.topics import SpmField

CONTENT_TYPE = "application/cloudevents+json"
#: The attributes every event carries (DESIGN.md §2); the extensions `spmfield` and `regioncode` depend on the type.
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data")


class CloudEvent(BaseModel):
    """One event: the attributes of DESIGN.md §2 and the typed `data` as JSON."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str = Field(pattern=r"^/posyandu/[a-z-]+$")
    type: str = Field(pattern=r"^posyandu\.[a-z-]+\.[a-z-]+\.v\d+$")
    subject: str = Field(min_length=1, max_length=200)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    spmfield: SpmField | None = None
    regioncode: str | None = Field(default=None, pattern=r"^\d{10}$")
    #: Set on the events of a snapshot republish (the current state announced again, `time` when it came about):
    #: consumers apply them as the idempotent upserts they are, and skip side effects meant for a live change.
    snapshot: bool | None = None

    def to_bytes(self) -> bytes:
        body = self.model_dump(mode="json", exclude_none=True)
        body["time"] = self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return orjson.dumps(body)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Headers repeating the routing attributes, for consumers that route on headers."""
        return [("content-type", CONTENT_TYPE.encode()), ("ce_id", str(self.id).encode()),
                ("ce_type", self.type.encode()), ("ce_source", self.source.encode())]

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> CloudEvent:
        """Parse a record value; raises ValueError for anything that is not a valid envelope."""
        if raw is None:
            raise ValueError("empty record value")
        try:
            return cls.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
