"""Where the JSON Schema of an event's data is served: the CloudEvents `dataschema`
attribute of webhook deliveries and event-stream messages."""

from __future__ import annotations


def dataschema(event_type: str, schema_version: int, base: str = "") -> str:
    """The schema an event's data was written under (GET /v1/schemas/{type}?version=N).

    Versioned, as CloudEvents asks: a later version of the type gets another URI,
    and the one an event names stays served. Under `base` (LEGATION_PUBLIC_URL) it is
    absolute, as CloudEvents' dataschema must be; without, relative to this API.
    """
    return f"{base}/v1/schemas/{event_type}?version={schema_version}"
