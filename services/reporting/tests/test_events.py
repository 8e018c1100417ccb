"""The reporting service consumes every topic; its AsyncAPI document is generated from the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from services.household.app import SPEC as household
from services.referral.app import spec as referral
from services.referral.settings import ReferralSettings
from services.reporting.app import asyncapi
from services.reporting.app import spec as reporting
from shared.events.topics import ALL_TOPICS


def test_the_checked_in_asyncapi_document_is_current() -> None:
    checked_in = json.loads((Path(__file__).parents[1] / "asyncapi.json").read_text())
    assert checked_in == json.loads(json.dumps(asyncapi(), sort_keys=True)), "run `make asyncapi`"


async def test_the_service_serves_its_document_and_consumes_every_topic(reporting: httpx.AsyncClient) -> None:
    served = (await reporting.get("/asyncapi.json")).json()
    assert served == asyncapi()
    assert {channel["address"] for channel in served["channels"].values()} == set(ALL_TOPICS)


def test_reporting_is_a_projection_that_fetches_in_rounds_and_the_referral_loop_is_not() -> None:
    """Reporting's lag costs only freshness, so it lets the broker gather a round of events (shared/consumer.py);
    the household and referral services' groups carry the referral loop's hops and fetch at once."""
    assert [sub.may_lag for sub in reporting().subscriptions] == [True]
    assert not any(sub.may_lag for sub in (*household.subscriptions, *referral(ReferralSettings()).subscriptions))
