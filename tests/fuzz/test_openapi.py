"""Schemathesis against every operation of every service's OpenAPI document, in-process.

Each operation gets positive cases (valid by the schema) and negative ones (invalid by it), sent as the admin and
as the narrower roles that use it, with generated path ids (unknown objects) and with the ids of real objects of
the fuzzing world (so that the success paths run too). Every response must be no 5xx, and conform to the document:
a documented status code, content type, body schema and headers; every negative case must be refused.

Hypothesis runs in a worker thread and sends each request to the session's event loop, where the apps live with
their lifespans (database pools, relays, consumers). Derandomized, so a run is reproducible. Generated strings may
hold NUL characters (schemathesis' `allow_x00`, on by default); tests/security/test_nul.py puts one in every string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.household.app import create_app as create_household_app
from services.referral.app import create_app as create_referral_app
from services.registry.app import create_app as create_registry_app
from services.reporting.app import create_app as create_reporting_app
from tests.fuzz.conftest import FuzzWorld
from tests.support import tokens

MAX_EXAMPLES = 15
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

#: The documents, read from the app factories (the same code the running apps serve at /openapi.json).
DOCUMENTS = {"registry": create_registry_app().openapi(), "household": create_household_app().openapi(),
             "referral": create_referral_app().openapi(), "reporting": create_reporting_app().openapi()}
SCHEMAS = {name: schemathesis.openapi.from_dict(document) for name, document in DOCUMENTS.items()}

#: Operations not fuzzed, each with its reason. Everything else in the documents is.
SKIPPED: dict[str, str] = {}


def _operations_of(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of a document; one that schemathesis cannot read is a failure, not a silent skip."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"schemathesis cannot read an operation: {result.err()}")
        found.append(result.ok())
    return found


def _operations() -> list[tuple[str, str]]:
    return [(name, op.label) for name, schema in SCHEMAS.items() for op in _operations_of(schema)
            if f"{name} {op.label}" not in SKIPPED]


OPERATIONS = _operations()


def test_every_documented_operation_is_fuzzed_or_skipped_with_a_reason() -> None:
    documented = {f"{name} {method.upper()} {path}" for name, document in DOCUMENTS.items()
                  for path, item in document["paths"].items() for method in item}
    fuzzed = {f"{name} {label}" for name, label in OPERATIONS}
    assert documented == fuzzed | set(SKIPPED)
    assert len(fuzzed) > 60


def _roles(service: str, world: FuzzWorld) -> list[dict[str, str]]:
    site = world.site
    if service == "registry":
        return [tokens.admin(), tokens.pembina("3101")]
    if service == "reporting":  # the suppressed roles too (a kader's and an agency's are not known to its broker)
        return [tokens.admin(), tokens.pembina("31"), tokens.service()]
    return [tokens.admin(), site.kader(), site.opd()]


def _real_ids(service: str, world: FuzzWorld) -> dict[str, str]:
    site = world.site
    if service == "registry":
        return {"posyandu_id": world.posyandu_id, "cadre_id": world.cadre_id, "agency_id": world.agency_id,
                "code": "3101021001"}
    return {"household_id": site.household_id, "member_id": site.member_id, "referral_id": site.referral_id,
            "agency_id": site.agency_id, "session_id": world.session_id}


def _part(value: Any) -> Any:
    """A part's content as httpx sends it: a negative case may make the file a number or null, sent as its text."""
    if isinstance(value, tuple):
        return (value[0], _part(value[1]), *value[2:])
    return value if isinstance(value, (bytes, str)) or hasattr(value, "read") else json.dumps(value)


def _parts(files: Any) -> Any:
    if files is None:
        return None
    items = files.items() if isinstance(files, dict) else files
    return [(name, _part(value)) for name, value in items]


def _send(client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> Callable[[schemathesis.Case], Any]:
    def send(case: schemathesis.Case) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=str(client.base_url).rstrip("/"))
        # `files`: a multipart body (the beneficiary list upload).
        unknown = set(kwargs) - {"method", "url", "headers", "params", "cookies", "json", "data", "files"}
        assert not unknown, f"unexpected transport arguments {unknown}"
        content = kwargs.get("data")
        request = client.build_request(kwargs["method"], kwargs["url"], headers=kwargs.get("headers"),
                                       params=kwargs.get("params"), cookies=kwargs.get("cookies") or None,
                                       json=kwargs.get("json"), content=content, files=_parts(kwargs.get("files")))
        request.read()  # a multipart body streams; the checks read the request again
        return asyncio.run_coroutine_threadsafe(client.send(request), loop).result(timeout=60)

    return send


@pytest.mark.parametrize(("service", "label"), OPERATIONS, ids=[f"{s} {label}" for s, label in OPERATIONS])
async def test_operation_conforms(service: str, label: str, fuzz_world: FuzzWorld, registry: httpx.AsyncClient,
                                  household: httpx.AsyncClient, referral: httpx.AsyncClient,
                                  reporting: httpx.AsyncClient) -> None:
    client = {"registry": registry, "household": household, "referral": referral, "reporting": reporting}[service]
    operation = next(op for op in _operations_of(SCHEMAS[service]) if op.label == label)
    path_names = {p.name for p in operation.path_parameters}
    ids = {k: v for k, v in _real_ids(service, fuzz_world).items() if k in path_names}
    strategies = []
    for headers in _roles(service, fuzz_world):
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, headers=headers))
        if ids:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, headers=headers, path_parameters=ids))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, headers=headers,
                                                path_parameters=ids or None))
    send = _send(client, asyncio.get_running_loop())

    @given(case=st.one_of(strategies))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        response = send(case)
        checks = CHECKS + ([negative_data_rejection] if case._meta and case._meta.generation.mode.is_negative
                           else [])
        case.validate_response(response, checks=checks)

    await asyncio.to_thread(fuzz)
