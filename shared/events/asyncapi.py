"""The AsyncAPI 3.0 document of a service's events, generated from the catalogue's models.

Each message's payload is the whole CloudEvent of DESIGN.md §2: the required attributes, the type's extensions
(`spmfield` on referral events, `regioncode` where the aggregate has a village) and `data`, a reference to the data
model's schema, each attribute marked as personal data or not (`x-personal-data`, from the model's marks; the
message's description says which in a sentence). Every schema a model needs is in `components.schemas`, so every
`$ref` resolves in the document.
"""

from __future__ import annotations

from typing import Any

from shared.events.catalogue import EventType, load_all
from shared.events.envelope import REQUIRED_ATTRIBUTES, CloudEvent
from shared.events.topics import REFERRAL_TOPICS
from shared.json_schema import add_component, model_schema

SCHEMAS = "#/components/schemas/"


def _topics_of(event_type: EventType) -> list[str]:
    return [event_type.topic] if isinstance(event_type.topic, str) else list(REFERRAL_TOPICS.values())


def _message_name(event_type: str) -> str:
    return event_type.removeprefix("posyandu.").replace(".", "_").replace("-", "_")


def _privacy(event_type: EventType) -> str:
    personal = event_type.personal_data
    if not personal:
        sentence = "No attribute of `data` is personal data (each is marked `x-personal-data: false`)."
        if event_type.carries_spmfield:
            sentence += (" The assigned agency reads the member, the free text and the evidence through the audited "
                         "REST API (`GET /api/v1/referrals/{id}`).")
        return sentence
    return (f"Personal data (`x-personal-data: true`): {', '.join(f'`{name}`' for name in personal)}; "
            "every other attribute of `data` is not.")


def _payload(event_type: EventType, envelope: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent of one type: the envelope's attributes pinned to the type, its extensions, its data."""
    attributes = envelope["properties"]
    properties = {name: attributes[name] for name in REQUIRED_ATTRIBUTES if name != "data"}
    properties["type"] = {"const": event_type.name}
    properties["source"] = {"const": f"/posyandu/{event_type.publisher}"}
    extensions = []
    if event_type.carries_spmfield:
        properties["spmfield"] = {"$ref": SCHEMAS + "SpmField"}
        extensions.append("spmfield")
    if event_type.regioncode != "absent":
        properties["regioncode"] = {"type": "string", "pattern": r"^\d{10}$",
                                    "description": "The 10-digit code of the aggregate's village"}
        if event_type.regioncode == "required":
            extensions.append("regioncode")
    properties["data"] = {"$ref": SCHEMAS + event_type.data_model.__name__}
    return {"title": f"{event_type.name} (CloudEvent)", "type": "object",
            "required": [*REQUIRED_ATTRIBUTES, *extensions], "properties": properties,
            # CloudEvents allows further extension attributes: a consumer ignores those it does not know.
            "additionalProperties": True}


def asyncapi_document(service: str, *, consumes: tuple[str, ...] = (), version: str = "1.0.0") -> dict[str, Any]:
    """Channels the service publishes to (send) and consumes (receive), each message a CloudEvent."""
    catalogue = load_all()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    components: dict[str, Any] = {"messages": {}, "schemas": {}}
    envelope = model_schema(CloudEvent, components["schemas"], SCHEMAS)

    def add(event_type: EventType, action: str) -> None:
        name = _message_name(event_type.name)
        add_component(components["schemas"], event_type.data_model.__name__,
                      model_schema(event_type.data_model, components["schemas"], SCHEMAS))
        components["messages"][name] = {
            "name": event_type.name, "title": event_type.name, "summary": event_type.summary,
            "description": f"{event_type.summary} {_privacy(event_type)}",
            "contentType": "application/cloudevents+json", "payload": _payload(event_type, envelope),
        }
        for topic in _topics_of(event_type):
            channel_id = topic.replace(".", "_").replace("-", "_")
            channel = channels.setdefault(channel_id, {"address": topic, "messages": {}})
            channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
            op_id = f"{action}_{channel_id}"
            op = operations.setdefault(op_id, {"action": action, "channel": {"$ref": f"#/channels/{channel_id}"},
                                               "messages": []})
            op["messages"].append({"$ref": f"#/channels/{channel_id}/messages/{name}"})

    for event_type in sorted(catalogue.values(), key=lambda e: e.name):
        if event_type.publisher == service:
            add(event_type, "send")
        elif set(_topics_of(event_type)) & set(consumes):
            add(event_type, "receive")
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"posyandu {service} events", "version": version,
                 "description": "CloudEvents 1.0 in JSON structured mode; the record key is the aggregate id.",
                 "license": {"name": "Apache-2.0"}},
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": components,
    }
