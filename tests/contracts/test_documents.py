"""The OpenAPI and AsyncAPI documents every service serves are usable as they are: valid, with every reference
resolving, every schema a valid JSON Schema, and the event envelope of DESIGN.md §2 in every message.

Generated over every service, every document, every reference and every message, so that a new endpoint, event
type or service is checked without a new test.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from asyncapi3 import AsyncAPI3
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.household.demo import DemoPosyandu, plan_households
from services.household.profiles.schemas import PROFILE_MODELS
from shared.events.catalogue import load_all
from shared.events.envelope import REQUIRED_ATTRIBUTES
from shared.events.topics import AUDIT_TOPIC, INTERNAL_TOPICS, SpmField
from tests.support.documents import SERVICES, dangling, messages_by_type, resolve, served

ROOT = Path(__file__).resolve().parents[2]
PROFILE_PATH = "/api/v1/households/{household_id}/profiles/{field}"


@pytest.fixture(scope="module")
async def openapi() -> dict[str, dict[str, Any]]:
    return {service: await served(service, "/openapi.json") for service in SERVICES}


@pytest.fixture(scope="module")
async def asyncapi() -> dict[str, dict[str, Any]]:
    return {service: await served(service, "/asyncapi.json") for service in SERVICES}


# --- OpenAPI ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_openapi_reference_resolves(openapi: dict[str, dict[str, Any]], service: str) -> None:
    assert dangling(openapi[service]) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_openapi_document_is_valid_openapi_3_1(openapi: dict[str, dict[str, Any]], service: str) -> None:
    document = openapi[service]
    assert document["openapi"].startswith("3.1.")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def _profile_body_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Each profile schema the PUT body documents, by name, resolved in the document."""
    body = document["paths"][PROFILE_PATH]["put"]["requestBody"]["content"]["application/json"]["schema"]
    return {ref.rsplit("/", 1)[1]: resolve(document, ref) for ref in (s["$ref"] for s in body["anyOf"])}


def _validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_profile_body_is_documented_with_its_items(openapi: dict[str, dict[str, Any]]) -> None:
    document = openapi["household"]
    documented = _profile_body_schemas(document)
    assert set(documented) == {model.__name__ for model in PROFILE_MODELS.values()}
    # What integrators had to find by trial and error is now in the document, with its enum and bounds.
    schemas = document["components"]["schemas"]
    aid = schemas["SosialHousehold"]["properties"]["aid_received"]["anyOf"][0]
    assert aid["maxItems"] == 12 and resolve(document, aid["items"]["$ref"])["enum"][0] == "pkh"
    flags = schemas["SosialMember"]["properties"]["neglect_flags"]["anyOf"][0]
    assert flags["uniqueItems"] is True and "neglected-child" in resolve(document, flags["items"]["$ref"])["enum"]
    immunization = schemas["KesehatanMember"]["properties"]["immunization_status"]["anyOf"][0]
    assert resolve(document, immunization["$ref"])["enum"] == ["complete-for-age", "incomplete", "unknown"]
    for name in documented:
        assert schemas[name]["additionalProperties"] is False, name

    # Every body the demo sends validates against the documented schema of its field, and what the endpoint
    # refuses (an unknown item, a value out of bounds, a value outside the enum, a repeated flag) the document
    # refuses too.
    places = [DemoPosyandu(str(uuid.UUID(int=1)), "P3171011001-001", "3171011001", "Posyandu Melati Uji")]
    for plan in plan_households(places, 60, date(2026, 3, 1)):
        member_ids = [str(uuid.uuid4()) for _ in plan.members]
        for field, model in PROFILE_MODELS.items():
            body = plan.profile_body(field, member_ids)
            model.model_validate(body)
            errors = [e.message for e in _validator(document, model.__name__).iter_errors(body)]
            assert errors == [], (field, body)
    member = str(uuid.uuid4())
    refused: list[tuple[SpmField, dict[str, Any]]] = [
        (SpmField.SOSIAL, {"household": {"aid_recieved": ["pkh"]}}),
        (SpmField.SOSIAL, {"household": {"dtsen_decile": 11}}),
        (SpmField.SOSIAL, {"members": {member: {"neglect_flags": ["homeless", "homeless"]}}}),
        (SpmField.KESEHATAN, {"members": {member: {"immunization_status": "done"}}}),
        (SpmField.KESEHATAN, {"members": {"not-a-uuid": {}}}),
        (SpmField.PERUMAHAN_RAKYAT, {"household": {"occupants": 0}}),
        (SpmField.TRANTIBUMLINMAS, {"household": {"disaster_risk": ["meteor"]}}),
    ]
    for field, body in refused:
        model = PROFILE_MODELS[field]
        with pytest.raises(ValueError):
            model.model_validate(body)
        assert list(_validator(document, model.__name__).iter_errors(body)), body


# --- AsyncAPI -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_the_checked_in_asyncapi_is_what_the_service_serves(asyncapi: dict[str, dict[str, Any]],
                                                            service: str) -> None:
    """services/<name>/asyncapi.json is regenerated whenever an event model changes (README: Events)."""
    checked_in = json.loads((ROOT / "services" / service / "asyncapi.json").read_text())
    assert checked_in == asyncapi[service]


@pytest.mark.parametrize("service", SERVICES)
def test_every_asyncapi_document_is_valid_asyncapi_3(asyncapi: dict[str, dict[str, Any]], service: str) -> None:
    document = asyncapi[service]
    assert document["asyncapi"] == "3.0.0"
    AsyncAPI3.model_validate(document)
    # Rules of the specification the object model does not check: an operation's messages are messages of its
    # channel, and a channel's messages are the component messages.
    for op_id, operation in document["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), op_id
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), (op_id, message)
    for channel_id, channel in document["channels"].items():
        for message_id, message in channel["messages"].items():
            assert message == {"$ref": f"#/components/messages/{message_id}"}, channel_id


@pytest.mark.parametrize("service", SERVICES)
def test_every_asyncapi_reference_resolves(asyncapi: dict[str, dict[str, Any]], service: str) -> None:
    assert dangling(asyncapi[service]) == []


def _schemas_of(document: dict[str, Any]) -> dict[str, Any]:
    return {**{f"schemas/{name}": schema for name, schema in document["components"]["schemas"].items()},
            **{f"messages/{mid}/payload": m["payload"] for mid, m in document["components"]["messages"].items()}}


@pytest.mark.parametrize("service", SERVICES)
def test_every_payload_schema_is_valid_json_schema(asyncapi: dict[str, dict[str, Any]], service: str) -> None:
    """Draft 2020-12, as pydantic writes them, and Draft 7, which AsyncAPI 3.0's default schema format extends."""
    invalid = {}
    for where, schema in _schemas_of(asyncapi[service]).items():
        for validator in (Draft202012Validator, Draft7Validator):
            try:
                validator.check_schema(schema)
            except SchemaError as exc:
                invalid[f"{where} ({validator.__name__})"] = exc.message
        assert "$defs" not in json.dumps(schema), f"{where}: nested $defs are not resolvable from the document"
    assert invalid == {}


@pytest.mark.parametrize("service", SERVICES)
def test_every_message_requires_the_envelope_of_design_2(asyncapi: dict[str, dict[str, Any]], service: str) -> None:
    document = asyncapi[service]
    catalogue = load_all()
    for event_type, message_id in messages_by_type(document).items():
        declared = catalogue[event_type]
        payload = document["components"]["messages"][message_id]["payload"]
        required = payload["required"]
        assert len(required) == len(set(required)), (event_type, required)
        extensions = (["spmfield"] if declared.carries_spmfield else []) + (
            ["regioncode"] if declared.regioncode == "required" else [])
        assert set(required) == {*REQUIRED_ATTRIBUTES, *extensions}, event_type
        properties = payload["properties"]
        assert set(required) <= set(properties), event_type
        assert properties["type"] == {"const": event_type}
        assert properties["source"] == {"const": f"/posyandu/{declared.publisher}"}
        assert properties["specversion"]["const"] == "1.0"
        assert properties["datacontenttype"]["const"] == "application/json"
        assert properties["id"]["format"] == "uuid" and properties["time"]["format"] == "date-time"
        assert ("spmfield" in properties) is declared.carries_spmfield, event_type
        assert ("regioncode" in properties) is (declared.regioncode != "absent"), event_type
        if "regioncode" in properties:
            assert properties["regioncode"]["pattern"] == r"^\d{10}$"
        assert resolve(document, properties["data"]["$ref"])["title"] == declared.data_model.__name__


def test_every_event_type_is_documented_by_its_publisher_and_its_consumers(
        asyncapi: dict[str, dict[str, Any]]) -> None:
    for event_type in load_all().values():
        publisher = asyncapi[event_type.publisher]
        assert event_type.name in messages_by_type(publisher), event_type.name
        sends = {m["$ref"].rsplit("/", 1)[1] for op in publisher["operations"].values() if op["action"] == "send"
                 for m in op["messages"]}
        assert messages_by_type(publisher)[event_type.name] in sends
    # Reporting consumes every public topic, so its document holds every event type but the internal ones.
    public = {name for name, e in load_all().items() if e.topic not in INTERNAL_TOPICS}
    assert set(messages_by_type(asyncapi["reporting"])) == public
    assert public != set(load_all()), "the internal audit event is in the catalogue"


def test_the_internal_audit_topic_is_documented_by_its_two_services_only(
        asyncapi: dict[str, dict[str, Any]]) -> None:
    for service, document in asyncapi.items():
        addresses = {channel["address"] for channel in document["channels"].values()}
        assert (AUDIT_TOPIC in addresses) is (service in ("referral", "household")), service
    actions = {service: {op["action"] for op in document["operations"].values()
                         if op["channel"]["$ref"].endswith(AUDIT_TOPIC.replace(".", "_"))}
               for service, document in asyncapi.items()}
    assert actions["referral"] == {"send"} and actions["household"] == {"receive"}
