"""Small measuring helpers: percentiles, results, process memory, a topic watcher keyed by what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition


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
    #: Per section, its phases' load and CPU figures (CpuMeter.stop), in the order measured.
    load: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record_load(self, benchmark: str, figures: dict[str, Any]) -> None:
        self.load.setdefault(benchmark, []).append(figures)
        cpu = ", ".join(f"{name} {value * 1000:.2f} ms" for name, value in
                        figures["cpu_seconds_per_operation"].items() if value)
        print(f"    {benchmark} [{figures['phase']}]: load {figures['load_average_before'][0]:.2f} -> "
              f"{figures['load_average_after'][0]:.2f}; CPU per operation: {cpu}", flush=True)
        if figures["busy"]:
            print(f"WARNING: {benchmark} [{figures['phase']}] ran on a busy machine: "
                  f"{'; '.join(figures['busy_reasons'])}", file=sys.stderr, flush=True)

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
                    await self.received(record)
                    for key in self.keys_of(record.value):
                        if key not in self.arrivals:
                            self.arrivals[key] = now
                            waiter = self._waiting.pop(key, None)
                            if waiter is not None and not waiter.done():
                                waiter.set_result(now)

    async def received(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Called with every record as it is read (nothing by default)."""

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


class Forwarder(TopicWatcher):
    """A plain consumer that sends each record it reads on to another topic (acks=all, awaited), as a consuming
    service does between its two hops: the middle of the raw two-hop baseline."""

    def __init__(self, bootstrap_servers: str, topic: str, to_topic: str) -> None:
        super().__init__(bootstrap_servers, topic, lambda value: [])
        self.to_topic = to_topic
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=False)

    async def start(self) -> None:
        await self.producer.start()
        await super().start()

    async def received(self, record: ConsumerRecord[bytes, bytes]) -> None:
        await self.producer.send_and_wait(self.to_topic, record.value, key=record.key)

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.producer.stop(), 10)


# ---------------------------------------------------------------- machine load and CPU per operation

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Other processes' CPU (not the stack's, not the bench's) above this many cores makes a section "busy".
BUSY_OTHERS_CORES = 0.25


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """The process and every descendant of it (a service's uvicorn workers, PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """utime + stime of the process and (unless told not to) its live descendants (`/proc/<pid>/stat`), in
    seconds. A descendant that exited in between takes its share with it: measure long-lived processes."""
    total = 0
    for member in process_tree(pid) if descendants else [pid]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(member)
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU-seconds every core spent on anything but idle and iowait since boot (`/proc/stat`)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    guest = sum(values[8:10]) if len(values) > 9 else 0  # counted in user and nice already
    return (sum(values) - idle - guest) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """The load average, and the CPU-seconds of named processes (the services, PostgreSQL, the broker, the bench),
    around one phase of a section: `start()`, the work, `stop(operations)`. What the machine spent beyond those
    processes is other processes' load: a phase where it exceeds BUSY_OTHERS_CORES, or the load average exceeds the
    core count, ran on a busy machine and says so."""

    phase: str
    pids: dict[str, int]
    #: Processes counted without their descendants (the bench started the whole stack).
    alone: frozenset[str] = frozenset({"bench"})
    load_before: list[float] = field(default_factory=list)
    _started: float = 0.0
    _cpu: dict[str, float] = field(default_factory=dict)
    _machine: float = 0.0

    def start(self) -> CpuMeter:
        self.load_before = load_average()
        self._cpu = {name: self._cpu_of(name) for name in self.pids}
        self._machine = machine_busy_seconds()
        self._started = time.perf_counter()
        return self

    def _cpu_of(self, name: str) -> float:
        return cpu_seconds(self.pids[name], descendants=name not in self.alone)

    def stop(self, operations: int) -> dict[str, Any]:
        wall = time.perf_counter() - self._started
        spent = {name: max(self._cpu_of(name) - self._cpu[name], 0.0) for name in self.pids}
        machine = machine_busy_seconds() - self._machine
        cores = os.cpu_count() or 1
        others_cores = max(machine - sum(spent.values()), 0.0) / wall if wall > 0 else 0.0
        load_after = load_average()
        reasons = []
        if max(self.load_before[0], load_after[0]) > cores:
            reasons.append(f"load average {max(self.load_before[0], load_after[0]):.2f} above {cores} cores")
        if others_cores > BUSY_OTHERS_CORES:
            reasons.append(f"other processes used {others_cores:.2f} cores")
        return {"phase": self.phase, "operations": operations, "seconds": round(wall, 2),
                "load_average_before": self.load_before, "load_average_after": load_after,
                "cpu_seconds_per_operation": {name: round(s / operations, 5) if operations else None
                                              for name, s in spent.items()},
                "other_processes_cores": round(others_cores, 2), "busy": bool(reasons),
                "busy_reasons": reasons}
