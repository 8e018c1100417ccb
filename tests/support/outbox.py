"""Probing an outbox relay in tests: a small event of its own to write, and reading its topic until it settles."""

from __future__ import annotations

import time

from pydantic import BaseModel

from shared.events.envelope import CloudEvent
from tests.support.kafka import Received, read_topic


class ProbeData(BaseModel):
    n: int


def probe_event(topic_key: str, n: int) -> CloudEvent:
    """The `n`th probe event of a key (a test checks their order on the topic)."""
    return CloudEvent(source="/posyandu/registry", type="posyandu.probe.published.v1", subject=topic_key,
                      data=ProbeData(n=n).model_dump())


async def read_settled(bootstrap_servers: str, topic: str, expected: int, settle: float = 2.0) -> list[Received]:
    """Read the topic until it holds `expected` distinct events, then on for `settle` seconds to see any copy."""
    complete_at: list[float] = []

    def until(received: list[Received]) -> bool:
        if not complete_at and len({r.event.id for r in received if r.event}) >= expected:
            complete_at.append(time.monotonic())
        return bool(complete_at) and time.monotonic() - complete_at[0] > settle

    return await read_topic(bootstrap_servers, topic, timeout=60, until=until)
