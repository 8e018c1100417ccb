"""`python -m deploy.local.stack` (what `make run` runs), started for real in a temporary data directory on free ports.

Ctrl-C (SIGINT to the stack's process group, as a terminal sends it) stops it within seconds whatever it is doing,
says it stopped, and leaves no process behind (no PostgreSQL, no broker, no service). A second start with the same
data directory offers the history of every topic again, although the broker is memory-only: the services' outbox
relays send it what their databases kept, each event once and in its key's order. (About three minutes: three
starts of the whole stack with a small household demo.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from deploy.local.embedded import EmbeddedPostgres, free_port
from shared.events.envelope import CloudEvent
from shared.events.topics import ALL_TOPICS, HOUSEHOLD_TOPIC, REFERRAL_TOPICS, REGISTRY_TOPIC

ROOT = Path(__file__).resolve().parents[2]
#: What the issue allows Ctrl-C to take.
STOP_WITHIN = 10.0
#: Households of the demo: enough for needs, and so referrals, in several fields (every third has a scenario).
DEMO_HOUSEHOLDS = 15
#: (key, event id) in the order a topic offers them, per topic.
History = dict[str, list[tuple[str, uuid.UUID]]]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port_base() -> int:
    """A base whose next four ports (the services') are free."""
    while True:
        base = free_port() - 1
        if base > 1024 and not any(_listening(base + n) for n in range(1, 5)):
            return base


class StackRun:
    """One `python -m deploy.local.stack` in its own process group, its output collected line by line."""

    def __init__(self, data_dir: Path, port_base: int, kafka_port: int) -> None:
        self.data_dir = data_dir
        self.ports = [port_base + n for n in range(1, 5)]
        self.kafka_port = kafka_port
        #: Every process the stack starts inherits it: how the test finds any that is left behind.
        self.marker = uuid.uuid4().hex
        self.lines: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._changed = threading.Condition()

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "STACK_DATA_DIR": str(self.data_dir),
               "STACK_PORT_BASE": str(self.ports[0] - 1), "KAFKA_PORT": str(self.kafka_port),
               "STACK_DEMO_HOUSEHOLDS": str(DEMO_HOUSEHOLDS), "STACK_TEST_MARKER": self.marker}
        self.process = subprocess.Popen([sys.executable, "-m", "deploy.local.stack"], env=env, cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 240) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: any(text in line for line in self.lines)
                                          or (self.process is not None and self.process.poll() is not None),
                                          timeout):
                raise AssertionError(f"no {text!r} in {timeout}s:\n{self.output}")
        assert any(text in line for line in self.lines), f"the stack exited before {text!r}:\n{self.output}"

    def interrupt(self) -> float:
        """Ctrl-C: SIGINT to the stack's process group; returns how long it took the stack to return."""
        assert self.process is not None
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.kill()
        return time.monotonic() - started

    def leftovers(self) -> list[str]:
        """The processes the stack started that are still there (each carries the marker in its environment)."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if f"STACK_TEST_MARKER={self.marker}".encode() in (proc / "environ").read_bytes():
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        return found

    def kill(self) -> None:
        """Clean-up after a failed test: kill whatever is left."""
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if f"STACK_TEST_MARKER={self.marker}".encode() in (proc / "environ").read_bytes():
                        os.kill(int(proc.name), signal.SIGKILL)
                except OSError:
                    continue

    def assert_stopped_cleanly(self, took: float) -> None:
        assert self.process is not None and self.process.returncode == 0, self.output
        assert took < STOP_WITHIN, f"Ctrl-C took {took:.1f}s:\n{self.output}"
        assert self.lines[-1] == "stopped.", self.output
        assert "unexpectedly" not in self.output, self.output
        assert not self.leftovers(), self.leftovers()
        assert not EmbeddedPostgres(self.data_dir / "pg").is_running()
        assert not any(_listening(port) for port in [*self.ports, self.kafka_port])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path, which is 0700: the unprivileged PostgreSQL user must reach it (see conftest).
    base = Path(tempfile.mkdtemp(prefix="posyandu-stack-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def stack_runs(data_dir: Path) -> Iterator[Callable[[], StackRun]]:
    """Start stack runs on one data directory, the same ports each time; whatever a failed test leaves is killed."""
    runs: list[StackRun] = []
    port_base, kafka_port = _free_port_base(), free_port()

    def start() -> StackRun:
        run = StackRun(data_dir, port_base, kafka_port)
        runs.append(run)
        run.start()
        return run

    yield start
    for run in runs:
        run.kill()


async def read_history(bootstrap_servers: str, done: Callable[[History], bool], timeout: float = 120) -> History:
    """Read every topic from the start until `done(history)`, then on for two seconds to catch any late copy."""
    consumer = AIOKafkaConsumer(*ALL_TOPICS, bootstrap_servers=bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    history: History = {topic: [] for topic in ALL_TOPICS}
    deadline, settled_at = time.monotonic() + timeout, None
    try:
        while settled_at is None or time.monotonic() < settled_at:
            assert time.monotonic() < deadline, {t: len(h) for t, h in history.items()}
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    event = CloudEvent.from_bytes(record.value)
                    history[record.topic].append(((record.key or b"").decode(), event.id))
            if settled_at is None and done(history):
                settled_at = time.monotonic() + 2
    finally:
        await consumer.stop()
    return history


def by_key(events: list[tuple[str, uuid.UUID]]) -> dict[str, list[uuid.UUID]]:
    keyed: dict[str, list[uuid.UUID]] = {}
    for key, event_id in events:
        keyed.setdefault(key, []).append(event_id)
    return keyed


def test_ctrl_c_stops_everything_in_seconds_and_a_second_start_offers_every_topics_history(
        stack_runs: Callable[[], StackRun]) -> None:
    # Ctrl-C while the demo data is loading (first start: registry demo, then households).
    first = stack_runs()
    first.wait_for_line("loading the demo data")
    time.sleep(1.5)
    first.assert_stopped_cleanly(first.interrupt())

    # A full start, then Ctrl-C once it is running; what every topic offers by then is its history.
    second = stack_runs()
    second.wait_for_line("The posyandu stack is running")
    referral_topics = set(REFERRAL_TOPICS.values())

    def demo_on_every_kind_of_topic(history: History) -> bool:
        return bool(history[REGISTRY_TOPIC] and history[HOUSEHOLD_TOPIC]
                    and any(history[topic] for topic in referral_topics))

    bootstrap = f"127.0.0.1:{second.kafka_port}"
    before = asyncio.run(read_history(bootstrap, demo_on_every_kind_of_topic))
    second.assert_stopped_cleanly(second.interrupt())

    # A second start on the same data: a fresh broker, and every topic's events again, once each, in key order.
    third = stack_runs()
    third.wait_for_line("The posyandu stack is running")

    def everything_back(history: History) -> bool:
        return all({e for _, e in history[t]} >= {e for _, e in before[t]} for t in ALL_TOPICS)

    after = asyncio.run(read_history(bootstrap, everything_back))
    for topic in ALL_TOPICS:
        ids = [event_id for _, event_id in after[topic]]
        assert len(ids) == len(set(ids)), f"{topic}: an event offered twice"
        earlier = {event_id for _, event_id in before[topic]}
        for key, sequence in by_key(before[topic]).items():
            assert [e for e in by_key(after[topic]).get(key, []) if e in earlier] == sequence, (topic, key)
    third.assert_stopped_cleanly(third.interrupt())


def test_the_local_topics_have_the_clusters_retention_and_no_compaction() -> None:
    """deploy/local creates each topic with the cleanup policy and retention of its KafkaTopic."""
    import yaml

    from deploy.local.stack import topic_config

    documents = yaml.safe_load_all((Path(__file__).resolve().parents[2] / "deploy/k8s/base/kafka/topics.yaml")
                                   .read_text())
    configs = {d["metadata"]["name"]: d["spec"]["config"] for d in documents if d}
    for topic, config in configs.items():
        assert topic_config(topic) == {"cleanup.policy": config["cleanup.policy"],
                                       "retention.ms": str(config["retention.ms"])}, topic
