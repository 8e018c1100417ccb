"""Small measuring helpers: percentiles, results, process memory, a topic watcher keyed by what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Result:
    benchmark: str
    metric: str
    value: float
    baseline: float
    unit: str
    better: str  # "higher" or "lower"
    baseline_desc: str
    samples: int | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        return round(self.value / self.baseline, 3) if self.baseline else None

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "metric": self.metric, "value": round(self.value, 3),
                "baseline": round(self.baseline, 3), "ratio": self.ratio, "unit": self.unit, "better": self.better,
                "baseline_desc": self.baseline_desc, "samples": self.samples, "notes": self.notes}


@dataclass
class Results:
    items: list[Result] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, result: Result) -> None:
        self.items.append(result)
        ratio = f"{result.ratio:.3f}" if result.ratio is not None else "-"
        print(f"    {result.benchmark} / {result.metric}: {result.value:.3f} {result.unit} "
              f"(baseline {result.baseline:.3f}, ratio {ratio})", flush=True)


def latency_results(benchmark: str, samples_ms: list[float], baseline_ms: list[float], baseline_desc: str,
                    notes: str = "") -> list[Result]:
    return [Result(benchmark, f"p{p} latency", percentile(samples_ms, p), percentile(baseline_ms, p), "ms", "lower",
                   baseline_desc, len(samples_ms), notes) for p in (50, 99)]


def proc_status_kb(pid: int, key: str) -> int:
    """A `/proc/<pid>/status` memory figure (VmHWM: peak RSS, VmRSS: current) in kB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class TopicWatcher:
    """A plain aiokafka consumer (no group, fetch_max_wait_ms 10) reading a topic from its current end.

    Each record is turned into keys by `keys_of`; the arrival time (perf_counter) of the first record with a key
    is kept, and `arrival(key)` waits for it.
    """

    def __init__(self, bootstrap_servers: str, topic: str, keys_of: Callable[[bytes], Iterable[str]],
                 fetch_max_wait_ms: int = 10) -> None:
        self.topic = topic
        self.keys_of = keys_of
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                                         enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms)
        self.arrivals: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        deadline = time.monotonic() + 30
        partitions = self.consumer.partitions_for_topic(self.topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no partitions for {self.topic}")
            await self.consumer.topics()
            partitions = self.consumer.partitions_for_topic(self.topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    for key in self.keys_of(record.value):
                        if key not in self.arrivals:
                            self.arrivals[key] = now
                            waiter = self._waiting.pop(key, None)
                            if waiter is not None and not waiter.done():
                                waiter.set_result(now)

    async def arrival(self, key: str, within: float) -> float:
        if key in self.arrivals:
            return self.arrivals[key]
        future = self._waiting.setdefault(key, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(future), within)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.consumer.stop(), 10)
