"""The reporting service consumes every topic; its AsyncAPI document is generated from the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from services.reporting.app import asyncapi
from shared.events.topics import ALL_TOPICS


def test_the_checked_in_asyncapi_document_is_current() -> None:
    checked_in = json.loads((Path(__file__).parents[1] / "asyncapi.json").read_text())
    assert checked_in == json.loads(json.dumps(asyncapi(), sort_keys=True)), "run `make asyncapi`"


async def test_the_service_serves_its_document_and_consumes_every_topic(reporting: httpx.AsyncClient) -> None:
    served = (await reporting.get("/asyncapi.json")).json()
    assert served == asyncapi()
    assert {channel["address"] for channel in served["channels"].values()} == set(ALL_TOPICS)

