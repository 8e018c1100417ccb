"""The alerts (deploy/k8s/base/monitoring): every rule parses as PromQL, names a runbook section of deploy/README.md,
and uses only metrics the services export; and each service, run as its own process, exports the metrics the alerts
expect of it on /metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker
from shared.events.topics import SpmField
from tests.faults.conftest import ServiceProcess, unique
from tests.support import tokens
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "k8s" / "base" / "monitoring" / "alerts.yaml"
DASHBOARD = REPO / "deploy" / "k8s" / "base" / "monitoring" / "dashboard.yaml"
README = REPO / "deploy" / "README.md"
RUNBOOK_URL = "https://github.com/posyandu-spm/posyandu-spm/blob/main/deploy/README.md#"

ALL = ("registry", "household", "referral", "reporting")
PUBLISHERS = ("registry", "household", "referral")
CONSUMERS = ("household", "referral", "reporting")
#: Which services export each metric an alert may use; `up` is Prometheus's own series per scrape target.
EXPORTERS: dict[str, tuple[str, ...]] = {
    "http_requests_total": ALL,
    "service_ready": ALL,
    "outbox_backlog": PUBLISHERS,
    "outbox_relay_leader": PUBLISHERS,
    "consumer_lag": CONSUMERS,
    "consumer_dead_letters": CONSUMERS,
    "referrals_overdue": ("referral",),
}
PROMETHEUS_SERIES = {"up"}
#: What the issue asks an alert for, by alert name.
REQUIRED_ALERTS = {"ConsumerLagHigh", "DeadLettersGrowing", "OutboxBacklog", "OutboxRelayWithoutLeader",
                   "ServiceNotReady", "HttpErrorRateHigh", "ReferralsOverdue"}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name is not None:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings in deploy/README.md (lower case, spaces to hyphens, punctuation dropped)."""
    headings = re.findall(r"^#{2,4} (.+)$", README.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_parses_names_its_runbook_and_uses_exported_metrics() -> None:
    alerts = rules()
    assert REQUIRED_ALERTS <= {rule["alert"] for rule in alerts}
    anchors = runbook_anchors()
    for rule in alerts:
        name = rule["alert"]
        names = metric_names(rule["expr"])
        assert names, name
        assert names <= set(EXPORTERS) | PROMETHEUS_SERIES, (name, names - set(EXPORTERS))
        if "for" in rule:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL), name
        assert url.removeprefix(RUNBOOK_URL) == name.lower() and name.lower() in anchors, name


def test_the_dashboard_queries_parse_and_use_exported_metrics() -> None:
    import orjson

    dashboard = orjson.loads(yaml.safe_load(DASHBOARD.read_text())["data"]["posyandu-spm.json"])
    exported = {f"{name}{suffix}" for name in EXPORTERS for suffix in ("", "_bucket")} | {
        "consumer_records_total", "http_request_duration_seconds_bucket"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert metric_names(target["expr"]) <= exported, panel["title"]


def test_the_parser_refuses_broken_promql() -> None:
    """Guards the guard: a typo in an expression must fail the test above, not pass it."""
    for broken in ("sum by (service) (outbox_backlog", "rate(http_requests_total[5 m])", "max by service (up)",
                   "consumer_lag >"):
        with pytest.raises(ValueError):  # the binding raises ValueError for every syntax error
            promql_parser.parse(broken)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


async def test_each_running_service_exports_the_metrics_its_alerts_use(stack: Stack, tmp_path: Path,
                                                                       processes: list[ServiceProcess],
                                                                       broker: EmbeddedBroker) -> None:
    # A broker of the test's own: the session's in-process services consume under the same group ids and would
    # share (or take) the partitions whose lag these processes must report.
    for name in ALL:
        dsn = await stack.migrated_database(name, unique(f"{name}_metrics"))
        env = {"SLA_SWEEP_INTERVAL_SECONDS": "3600"} if name == "referral" else {}
        processes.append(ServiceProcess(name, dsn, broker.bootstrap_servers, tmp_path, **env))
    await asyncio.gather(*(process.start() for process in processes))
    by_name = {process.name: process for process in processes}

    # Regions of the reserved regencies: registry events that every consumer reads (a batch, so lag is measured).
    async with httpx.AsyncClient(base_url=by_name["registry"].url, timeout=30) as client:
        imported = await client.post("/api/v1/regions/import", content=b"kode,nama\n61,Kalimantan Barat\n"
                                     b"61.71,Kota Pontianak\n61.72,Kota Singkawang\n",
                                     headers={**tokens.admin(), "Content-Type": "text/csv"})
        assert imported.status_code == 200, imported.text

    async def scrape(process: ServiceProcess) -> dict[str, list[dict[str, str]]]:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{process.url}/metrics")).text
        return {family.name: [sample.labels for sample in family.samples]
                for family in text_string_to_metric_families(text)}

    for process in processes:
        async def exported(process: ServiceProcess = process) -> bool:
            families = await scrape(process)
            for metric, exporters in EXPORTERS.items():
                family = metric.removesuffix("_total")  # the parser names a counter's family without it
                expected = process.name in exporters
                if not expected:
                    # referrals_overdue is the referral's own: nobody else even declares it.
                    assert metric != "referrals_overdue" or family not in families, process.name
                    continue
                labels = families.get(family, [])
                if metric == "referrals_overdue":
                    if {s.get("spm_field") for s in labels} != {f.value for f in SpmField}:
                        return False
                elif not any(s.get("service") == process.name for s in labels):
                    return False
            return True

        await eventually(exported, f"{process.name} to export every metric its alerts use", timeout=120, interval=0.5)
