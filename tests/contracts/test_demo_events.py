"""Every event a demo run puts on every topic validates against the message schema its publisher serves.

The four services run in-process on a broker of their own (the demo's agencies must not route other tests'
referrals) and databases of their own, as `make run` starts them: the registry demo and the household demo are
loaded through the APIs, the referral service turns the detected needs into referrals, and the run is read once
everything has settled. Each record's value, the whole CloudEvent, is validated with jsonschema against the payload
of its type's message, resolved within the served AsyncAPI document of the publisher and of every consumer.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import ConsumerRecord
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.household import demo as household_demo
from services.household.app import SPEC as HOUSEHOLD_SPEC
from services.household.app import create_app as create_household_app
from services.household.settings import HouseholdSettings
from services.referral.app import create_app as create_referral_app
from services.referral.app import spec as referral_spec
from services.referral.settings import ReferralSettings
from services.registry import demo as registry_demo
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from services.reporting.app import create_app as create_reporting_app
from services.reporting.settings import ReportingSettings
from shared.auth import Role, mint_token
from shared.events.catalogue import load_all
from shared.events.topics import ALL_TOPICS, REFERRAL_TOPICS
from shared.service import ServiceSpec
from shared.settings import DEV_JWT_SECRET
from tests.support.documents import SERVICES, message_validator, messages_by_type
from tests.support.kafka import read_to_end
from tests.support.waiting import eventually

ADMIN = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="demo-loader")
#: Households of the household demo: enough for every scenario of its plan (and needs in every field).
HOUSEHOLDS = 60


@dataclass
class DemoRun:
    broker: EmbeddedBroker
    clients: dict[str, httpx.AsyncClient]
    #: The services that publish what they consume into (their spec and database), to know when the run settled.
    reacting: list[tuple[ServiceSpec, str]]
    #: The databases of the services with an outbox.
    publishing: list[str]


@pytest.fixture(scope="module")
def demo_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
async def demo_run(stack: Stack, demo_broker: EmbeddedBroker) -> AsyncIterator[DemoRun]:
    await create_topics(demo_broker.bootstrap_servers, list(ALL_TOPICS))

    async def settings_of(service: str) -> dict[str, Any]:
        dsn = await stack.migrated_database(service, f"contracts_{service}")
        return {**service_settings(stack, dsn), "kafka_bootstrap_servers": demo_broker.bootstrap_servers}

    registry_settings = RegistrySettings(**await settings_of("registry"))
    household_settings = HouseholdSettings(**await settings_of("household"))
    referral_settings = ReferralSettings(**await settings_of("referral"), sla_sweep_interval_seconds=3600)
    reporting_settings = ReportingSettings(**await settings_of("reporting"))
    async with contextlib.AsyncExitStack() as running:
        async def start(name: str, app: Any) -> Any:
            manager = await running.enter_async_context(
                LifespanManager(app, startup_timeout=30, shutdown_timeout=30))
            clients[name] = await running.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=f"http://{name}",
                                  timeout=120))
            return manager.app

        clients: dict[str, httpx.AsyncClient] = {}
        await start("registry", create_registry_app(registry_settings))
        household_app = await start("household", create_household_app(household_settings))
        await start("referral", create_referral_app(
            referral_settings, household_transport=httpx.ASGITransport(app=household_app)))
        await start("reporting", create_reporting_app(reporting_settings))

        await registry_demo.load(clients["registry"], ADMIN)
        summary = await household_demo.load(clients["household"], clients["registry"], admin_token=ADMIN,
                                            households=HOUSEHOLDS, reference_date=date.today(), wait_seconds=90)
        assert summary.created == HOUSEHOLDS
        yield DemoRun(broker=demo_broker, clients=clients,
                      reacting=[(HOUSEHOLD_SPEC, household_settings.database_url),
                                (referral_spec(referral_settings), referral_settings.database_url)],
                      publishing=[s.database_url for s in (registry_settings, household_settings,
                                                           referral_settings)])


async def _fetch_ids(database_url: str, query: str, *args: Any) -> set[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return {row[0] for row in await conn.fetch(query, *args)}
    finally:
        await conn.close()


def _value(record: ConsumerRecord[bytes, bytes]) -> Any:
    return json.loads(record.value or b"null")


async def _unsettled(run: DemoRun, records: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    """What is still moving: events a reacting consumer has not applied yet, outbox rows not yet published."""
    pending = []
    events = [(record.topic, _value(record)) for record in records]
    for spec, database_url in run.reacting:
        for subscription in spec.subscriptions:
            handled = {event["id"] for topic, event in events
                       if topic in subscription.topics and event["type"] in subscription.handlers}
            applied = {str(i) for i in await _fetch_ids(
                database_url, "SELECT event_id FROM inbox WHERE consumer_group = $1", subscription.group_id)}
            if handled - applied:
                pending.append(f"{subscription.group_id}: {len(handled - applied)} events not applied")
    for database_url in run.publishing:
        unpublished = await _fetch_ids(database_url, "SELECT id FROM outbox WHERE published_at IS NULL")
        if unpublished:
            pending.append(f"{database_url.rsplit('/', 1)[-1]}: {len(unpublished)} outbox rows unpublished")
    return pending


async def _settled_records(run: DemoRun, timeout: float = 180) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every topic once nothing moves: consumers applied all they read, outboxes are published,
    and reading again finds nothing new."""
    records: list[ConsumerRecord[bytes, bytes]] = []

    async def pending() -> list[str]:
        records[:] = await read_to_end(run.broker.bootstrap_servers, ALL_TOPICS)
        left = await _unsettled(run, records)
        if not left and len(await read_to_end(run.broker.bootstrap_servers, ALL_TOPICS)) != len(records):
            left.append("new records while reading")
        return left

    await eventually(pending, "the demo run to settle", timeout, interval=0.5, until=lambda left: not left)
    return records


async def test_every_event_of_a_demo_run_validates_against_its_served_message(demo_run: DemoRun) -> None:
    records = await _settled_records(demo_run)
    documents = {}
    for service in SERVICES:
        response = await demo_run.clients[service].get("/asyncapi.json")
        assert response.status_code == 200
        documents[service] = response.json()

    # For each topic and event type: the documents that list its message on that topic's channel.
    listing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for service, document in documents.items():
        ids = messages_by_type(document)
        for channel in document["channels"].values():
            for message_id in channel["messages"]:
                event_type = next(t for t, i in ids.items() if i == message_id)
                listing.setdefault((channel["address"], event_type), []).append((service, message_id))
    validators = {(service, message_id): message_validator(documents[service], message_id)
                  for entries in listing.values() for service, message_id in entries}

    seen: dict[str, set[str]] = {}
    invalid: list[str] = []
    for record in records:
        event = _value(record)
        assert isinstance(event, dict), f"{record.topic}@{record.offset}: not a JSON object"
        event_type = str(event.get("type"))
        seen.setdefault(record.topic, set()).add(event_type)
        publisher = str(event.get("source")).removeprefix("/posyandu/")
        documented = listing.get((record.topic, event_type), [])
        assert publisher in {service for service, _ in documented}, (
            f"{event_type} on {record.topic} has no message in its publisher's document")
        assert (record.key or b"").decode() == event["subject"], f"{event_type}: the record key is the subject"
        for service, message_id in documented:
            invalid.extend(f"{event_type} ({service}): {'/'.join(map(str, e.absolute_path))}: {e.message}"
                           for e in validators[(service, message_id)].iter_errors(event))
    assert invalid == [], invalid[:20]

    # The field topics carry no personal data (issue 16): every attribute of a field-topic record is one its model
    # declares (so classified), and none of them is classified as personal data.
    leaks: list[str] = []
    for record in records:
        if record.topic in REFERRAL_TOPICS.values():
            event = _value(record)
            model = load_all()[event["type"]]
            declared = set(model.data_model.model_fields)
            leaks.extend(f"{event['type']}: {key}" for key in event["data"]
                         if key not in declared or key in model.personal_data)
    assert leaks == [], leaks[:20]

    # The run is not vacuous: every topic carried events, of the types a demo produces.
    assert set(seen) == set(ALL_TOPICS), seen
    types = set().union(*seen.values())
    assert {"posyandu.region.registered.v1", "posyandu.posyandu.registered.v1", "posyandu.cadre.assigned.v1",
            "posyandu.agency.registered.v1", "posyandu.household.registered.v1", "posyandu.member.added.v1",
            "posyandu.profile.updated.v1", "posyandu.household.need-detected.v1",
            "posyandu.referral.created.v1"} <= types, types


async def test_the_demo_programmes_reach_the_province_officers_spm_matrix(demo_run: DemoRun) -> None:
    """Issue 15 end to end: the programmes the registry demo registers (several agencies, a partner organisation
    among them) travel the registry topic into reporting, and a province officer's SPM matrix shows their budgets
    by source, agency by agency."""
    from services.registry.demo.programmes import DEMO_YEAR
    from tests.support import tokens

    await _settled_records(demo_run)
    agencies = (await demo_run.clients["registry"].get("/api/v1/agencies", params={"limit": 500},
                                                        headers={"Authorization": f"Bearer {ADMIN}"})).json()["items"]
    partners = {a["id"] for a in agencies if a["kind"] == "partner"}
    assert partners, "the demo registers a partner organisation"
    province = "31"
    response = await demo_run.clients["reporting"].get(
        "/api/v1/spm/matrix", params={"region": province, "year": DEMO_YEAR, "columns": "agencies"},
        headers=tokens.pembina(province))
    assert response.status_code == 200, response.text
    funded = [row for row in response.json()["rows"] if row.get("agency_id") and row["programmes"]]
    assert len({row["agency_id"] for row in funded}) >= 3, funded
    assert any(row["agency_id"] in partners and row["planned_zakat"] > 0 and row["realised_zakat"] > 0
               for row in funded), funded
    assert all(row["budget_realised"] <= row["budget_planned"] for row in funded)
