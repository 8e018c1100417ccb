"""The AsyncAPI 3.0 document of a service's events, generated from the catalogue's models."""

from __future__ import annotations

from typing import Any

from shared.events.catalogue import EventType, load_all
from shared.events.envelope import CloudEvent
from shared.events.topics import REFERRAL_TOPICS


def _topics_of(event_type: EventType) -> list[str]:
    return [event_type.topic] if isinstance(event_type.topic, str) else list(REFERRAL_TOPICS.values())


def _message_name(event_type: str) -> str:
    return event_type.removeprefix("posyandu.").replace(".", "_").replace("-", "_")


def asyncapi_document(service: str, *, consumes: tuple[str, ...] = (), version: str = "1.0.0") -> dict[str, Any]:
    """Channels the service publishes to (send) and consumes (receive), each message a CloudEvent."""
    catalogue = load_all()
    envelope = CloudEvent.model_json_schema()
    envelope["properties"].pop("data", None)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    components: dict[str, Any] = {"messages": {}, "schemas": {}}

    def add(event_type: EventType, action: str) -> None:
        name = _message_name(event_type.name)
        data_schema = event_type.data_model.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in data_schema.pop("$defs", {}).items():
            components["schemas"][sub_name] = sub
        components["schemas"][event_type.data_model.__name__] = data_schema
        payload = {**envelope, "required": [*envelope.get("required", []), "data"],
                   "properties": {**envelope["properties"],
                                  "type": {"const": event_type.name},
                                  "data": {"$ref": f"#/components/schemas/{event_type.data_model.__name__}"}}}
        payload.pop("$defs", None)
        components["messages"][name] = {
            "name": event_type.name, "title": event_type.name, "summary": event_type.summary,
            "contentType": "application/cloudevents+json", "payload": payload,
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
