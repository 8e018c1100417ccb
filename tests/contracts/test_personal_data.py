"""Which event attributes are personal data: every attribute of every event type is classified, in the catalogue
and so in the AsyncAPI documents, and the referral field topics, which every agency of a field may read, carry none.

Generated over the whole catalogue and every served document, so a new attribute or event type without its
classification fails here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from shared.events import referral as ev
from shared.events.catalogue import load_all
from shared.events.personal_data import MARK, NotPersonal, Personal, classification, personal_attributes
from shared.events.topics import REFERRAL_TOPICS
from tests.support.documents import SERVICES, messages_by_type, resolve, served


@pytest.fixture(scope="module")
async def asyncapi() -> dict[str, dict[str, Any]]:
    return {service: await served(service, "/asyncapi.json") for service in SERVICES}


def _object_schemas(document: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The object schema and every object schema it refers to (nested models), by title."""
    found: list[tuple[str, dict[str, Any]]] = []
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                target = resolve(document, node["$ref"])
                if "properties" in target and (target["title"], target) not in found:
                    found.append((target["title"], target))
                    pending.append(target)
            pending.extend(v for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            pending.extend(node)
    return found


def test_the_classification_finds_an_unmarked_attribute() -> None:
    class Sample(BaseModel):
        name: Personal[str]
        region: NotPersonal[str]
        added_later: str

    assert classification(Sample) == {"name": True, "region": False, "added_later": None}
    assert personal_attributes(Sample) == ["name"]


def test_every_attribute_of_every_event_model_is_classified() -> None:
    unmarked = {event_type.name: [name for name, mark in classification(event_type.data_model).items()
                                  if mark is None]
                for event_type in load_all().values()}
    assert {name: attrs for name, attrs in unmarked.items() if attrs} == {}


@pytest.mark.parametrize("service", SERVICES)
def test_every_data_attribute_in_the_asyncapi_document_says_whether_it_is_personal_data(
        asyncapi: dict[str, dict[str, Any]], service: str) -> None:
    document = asyncapi[service]
    catalogue = load_all()
    for event_type, message_id in messages_by_type(document).items():
        message = document["components"]["messages"][message_id]
        data = message["payload"]["properties"]["data"]
        schemas = _object_schemas(document, data)
        assert schemas, event_type
        for title, schema in schemas:
            marks = {name: prop.get(MARK) for name, prop in schema["properties"].items()}
            assert all(isinstance(mark, bool) for mark in marks.values()), (event_type, title, marks)
        # The marks are the catalogue's, and the description says the same in a sentence.
        declared = catalogue[event_type]
        top = resolve(document, data["$ref"])
        assert [n for n, p in top["properties"].items() if p[MARK]] == declared.personal_data, event_type
        if declared.personal_data:
            assert "Personal data" in message["description"], event_type
            assert all(f"`{name}`" in message["description"] for name in declared.personal_data), event_type
        else:
            assert "No attribute of `data` is personal data" in message["description"], event_type


def test_the_referral_field_topics_carry_no_personal_data(asyncapi: dict[str, dict[str, Any]]) -> None:
    on_field_topics = [e for e in load_all().values() if e.carries_spmfield]
    assert {e.name for e in on_field_topics} >= {ev.REFERRAL_CREATED.name, ev.REFERRAL_NOTE_ADDED.name}
    assert {e.name: e.personal_data for e in on_field_topics if e.personal_data} == {}
    # What every agency of the field reads, as the referral service documents it.
    document = asyncapi["referral"]
    for topic in REFERRAL_TOPICS.values():
        channel = next(c for c in document["channels"].values() if c["address"] == topic)
        for ref in channel["messages"].values():
            message = resolve(document, ref["$ref"])
            for title, schema in _object_schemas(document, message["payload"]["properties"]["data"]):
                assert not [n for n, p in schema["properties"].items() if p[MARK]], (topic, title)
            assert "reads the member, the free text and the evidence through the audited REST API" in (
                message["description"])


def test_the_household_topic_marks_the_masked_nik_and_health_facts_as_personal_data() -> None:
    catalogue = load_all()
    assert {"nik_masked", "birth_date", "sex"} <= set(catalogue["posyandu.member.added.v1"].personal_data)
    assert {"member_nik_masked", "evidence"} <= set(catalogue["posyandu.household.need-detected.v1"].personal_data)
    assert {"waz", "haz", "whz"} <= set(catalogue["posyandu.measurement.recorded.v1"].personal_data)


def test_a_referral_event_written_before_the_masked_nik_was_removed_still_parses() -> None:
    """Records of v1 published earlier keep `member_nik_masked`: consumers read them and drop it."""
    data = ev.ReferralData(referral_id=uuid.uuid4(), need_id=None, household_id=uuid.uuid4(), member_id=uuid.uuid4(),
                           posyandu_id=uuid.uuid4(), village_code="3174011001", spm_field="kesehatan",
                           category="kesehatan.tb-suspect", urgency="high", status="requested", agency_id=None,
                           respond_by=None, complete_by=None, version=1).model_dump(mode="json")
    assert "member_nik_masked" not in data
    earlier = ev.ReferralData.model_validate({**data, "member_nik_masked": "317401******0001"})
    assert earlier.model_dump(mode="json") == data
