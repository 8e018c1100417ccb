"""Structured JSON logs with request and event ids, and the Prometheus metrics every service exports."""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
#: What a request id taken from a caller may look like: short, and nothing that could forge a log line or a field.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def adopt_request_id(inbound: str | None) -> str:
    """The caller's request id if it is safe to log and store (1-64 letters, digits, `.`, `_`, `:`, `-`, starting
    with a letter or digit), else a new one: a service calling another passes its own, so their audit rows join."""
    if inbound is not None and _SAFE_REQUEST_ID.fullmatch(inbound):
        return inbound
    return uuid.uuid4().hex


def request_id_headers() -> dict[str, str]:
    """The current request's id, as the header of an outbound call to another service."""
    request_id = request_id_var.get()
    return {REQUEST_ID_HEADER: request_id} if request_id is not None else {}

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency",
                         ["service", "method", "route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
# Gauges say how they combine when WEB_CONCURRENCY runs several worker processes (shared/cli.py): "liveall" keeps
# one series per live worker (a `pid` label; the alerts aggregate with sum/max/min), "max" the highest of any.
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published", ["service"], multiprocess_mode="liveall")
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka", ["service"])
OUTBOX_RESENT = Counter("outbox_resent_total", "Sent outbox rows sent again to a broker that had lost them",
                        ["service"])
OUTBOX_LEADER = Gauge("outbox_relay_leader", "1 while this process is the service's active relay", ["service"],
                      multiprocess_mode="liveall")
CONSUMER_LAG = Gauge("consumer_lag", "Records behind the partition's high watermark",
                     ["service", "group", "topic", "partition"], multiprocess_mode="liveall")
CONSUMER_DEAD_LETTERS = Gauge("consumer_dead_letters", "Dead letters of a consumer group by state (pending, replayed, "
                              "discarded), counted from the service's dead_letters table",
                              ["service", "group", "state"], multiprocess_mode="liveall")
READINESS = Gauge("service_ready", "1 while the last readiness check of this process found the dependency "
                  "reachable, else 0", ["service", "check"], multiprocess_mode="liveall")
CONSUMER_RECORDS = Counter("consumer_records_total", "Records handled by consumers, by outcome",
                           ["service", "group", "outcome"])
RETENTION_DELETED = Counter("retention_deleted_rows_total", "Rows the retention clean-up deleted, by table",
                            ["service", "table"])
RETENTION_LAST_RUN = Gauge("retention_last_run_timestamp_seconds",
                           "When this process last completed a retention clean-up (Unix time)", ["service"],
                           multiprocess_mode="max")

#: Set by `serve` when it runs several worker processes: where each keeps its metrics (prometheus_client's
#: multiprocess mode), so that any worker's /metrics answers for the whole pod.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_exposition() -> bytes:
    """The Prometheus text of this process, or of every worker of the pod when several share the multiprocess
    directory (the series of workers that died are dropped from the live gauges, and kept in the counters)."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return generate_latest()
    for name in os.listdir(directory):
        pid = name.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (event_id := event_id_var.get()) is not None:
            entry["event_id"] = event_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
