"""Generate the AsyncAPI 3 document of the ``events`` exchange from the event catalogue.

``python -m shared.messaging.asyncapi > docs/asyncapi.yaml``; a test fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from shared.messaging.events import CATALOGUE, EXCHANGE, Event, event_type_name


def _message_name(model: type[Event]) -> str:
    return model.__name__


def document() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for model in CATALOGUE:
        name = _message_name(model)
        event_type = event_type_name(model)
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
        source = model.model_fields["source"].default or "any service"
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": model.summary,
            "contentType": "application/json",
            "correlationId": {"location": "$message.header#/correlation_id"},
            "headers": {
                "type": "object",
                "properties": {
                    "correlation_id": {"type": "string", "description": "X-Request-ID of the cause"},
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                },
            },
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {
                "amqp": {"contentEncoding": "utf-8", "messageType": event_type, "bindingVersion": "0.3.0"}
            },
        }
        channel_id = event_type.replace(".", "_")
        channels[channel_id] = {
            "address": event_type,
            "description": f"Routing key `{event_type}` on the `{EXCHANGE}` topic exchange.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False},
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "summary": f"Published by {source} through its outbox.",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Events",
            "version": "1.0.0",
            "description": (
                f"Every event on the durable topic exchange `{EXCHANGE}`. Routing key = event type; "
                "messages are persistent, `message_id` = event id, `type` = event type. Delivery is at "
                "least once: consumers deduplicate by event id."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
