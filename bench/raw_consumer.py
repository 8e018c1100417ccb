"""The raw baseline of section 5, in a process of its own as the reporting service's consumer is: a plain aiokafka
consumer that writes the member-added events of a topic into scratch tables with dedup, one transaction a fetch.

    python -m bench.raw_consumer BOOTSTRAP TOPIC DSN EVENTS

It assigns itself every partition of TOPIC at its end, prints `ready`, and then (the bench produces meanwhile)
writes EVENTS events and prints `done` once the last row is committed. Then it reads the same events again from
where it started, already all on the topic, into emptied tables, and prints `consumed-only SECONDS`."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import date, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def consume(consumer: AIOKafkaConsumer, conn: asyncpg.Connection, events: int) -> None:
    seen = 0
    deadline = time.perf_counter() + 900
    while seen < events:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"raw consumer read {seen} of {events} events")
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        ids, types, rows = [], [], []
        for records in batches.values():
            for record in records:
                body = orjson.loads(record.value or b"{}")
                d = body["data"]
                ids.append(uuid.UUID(body["id"]))
                types.append(body["type"])
                rows.append((uuid.UUID(d["member_id"]), uuid.UUID(d["household_id"]), d["sex"],
                             date.fromisoformat(d["birth_date"]), d["pregnant"], d["disability"], d["status"],
                             d["version"], datetime.fromisoformat(body["time"].replace("Z", "+00:00"))))
        if not rows:
            continue
        # The same rows with dedup: the inbox claim (one unnest statement) and the upsert of the claimed events,
        # in one transaction.
        async with conn.transaction():
            claimed = {r[0] for r in await conn.fetch(
                "INSERT INTO bench_inbox SELECT 'raw', * FROM unnest($1::uuid[], $2::text[]) "
                "ON CONFLICT DO NOTHING RETURNING event_id", ids, types)}
            await conn.executemany(
                "INSERT INTO bench_members (id, household_id, sex, birth_date, pregnant, disability, status,"
                " version, first_seen_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO UPDATE SET"
                " version = EXCLUDED.version WHERE bench_members.version < EXCLUDED.version",
                [row for event_id, row in zip(ids, rows, strict=True) if event_id in claimed])
        seen += len(rows)


async def main(bootstrap: str, topic: str, dsn: str, events: int) -> None:
    conn = await asyncpg.connect(dsn)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await conn.execute("CREATE TEMP TABLE bench_members (LIKE members INCLUDING ALL)")
        await conn.execute("CREATE TEMP TABLE bench_inbox (consumer_group text, event_id uuid, "
                           "event_type text, PRIMARY KEY (consumer_group, event_id))")
        await consumer.topics()  # the cluster's metadata, with the topic's partitions
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"{topic}: no partitions")
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        start = {tp: await consumer.position(tp) for tp in partitions}
        print("ready", flush=True)
        await consume(consumer, conn, events)
        print("done", flush=True)

        await conn.execute("TRUNCATE bench_members, bench_inbox")
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        started = time.perf_counter()
        await consume(consumer, conn, events)
        print(f"consumed-only {time.perf_counter() - started:.6f}", flush=True)
    finally:
        await consumer.stop()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
