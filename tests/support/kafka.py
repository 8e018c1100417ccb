"""Reading topics in tests with a plain aiokafka consumer, as an agency integration would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.events.envelope import CloudEvent


@dataclass
class Received:
    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent | None

    @property
    def headers(self) -> dict[str, bytes]:
        return dict(self.record.headers or ())


async def read_topic(bootstrap_servers: str, topic: str, *, until: Callable[[list[Received]], bool],
                     timeout: float = 20.0, fetch_max_wait_ms: int = 10) -> list[Received]:
    """Read a topic from the beginning until `until(received)` holds; raise if it does not within `timeout`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms)
    received: list[Received] = []
    deadline = time.monotonic() + timeout
    start_deadline = time.monotonic() + timeout
    while True:
        try:
            await consumer.start()
            break
        except Exception:
            if time.monotonic() > start_deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        while not until(received):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met in {timeout}s; got {len(received)} records")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        event: CloudEvent | None = CloudEvent.from_bytes(record.value)
                    except ValueError:
                        event = None
                    received.append(Received(record, event))
    finally:
        await consumer.stop()
    return received


def events_about(received: list[Received], subject: str) -> list[CloudEvent]:
    return [r.event for r in received if r.event is not None and r.event.subject == subject]


async def read_to_end(bootstrap_servers: str, topics: Sequence[str], *, timeout: float = 60.0,
                      fetch_max_wait_ms: int = 10) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of these topics, from the beginning to the end offsets they have when this is called."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    try:
        await consumer.topics()  # metadata, so that the partitions of every topic are known
        partitions = [TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topics}: not read to the end in {timeout}s; got {len(records)} records")
            for batch in (await consumer.getmany(*partitions, timeout_ms=200)).values():
                records.extend(r for r in batch if r.offset < end[TopicPartition(r.topic, r.partition)])
    finally:
        await consumer.stop()
    return records
