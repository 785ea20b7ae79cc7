"""The document's `webhooks`: what a subscription's receiver is sent, one entry per event type.

Each delivery is a CloudEvents 1.0 structured-mode body (service/subscribers/cloud_events.py)
whose `data` is the event type's, signed per Standard Webhooks. The envelopes here are
Structs for the document only: the same fields as CloudEvent, with `type` and `data` typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, cast

import msgspec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from msgspec import Meta

from service.incidents.catalogue import CATALOGUE, EventType

CLOUDEVENTS_JSON: Final = "application/cloudevents+json"
_PARAMETER = "#/components/parameters/{name}"


def pascal(name: str) -> str:
    """`incident.source_added` as `IncidentSourceAdded`."""
    return "".join(part.capitalize() for part in name.replace(".", "_").split("_"))


def envelope(entry: EventType) -> type[msgspec.Struct]:
    """The CloudEvent a receiver is sent for events of this type."""
    fields: list[tuple[str, Any]] = [
        ("specversion", Literal["1.0"]),
        ("id", Annotated[str, Meta(description="The event's id; webhook-id, on every retry")]),
        ("source", Annotated[str, Meta(description="`/v1/incidents/<incident id>`")]),
        ("type", cast(Any, Literal)[entry.name]),  # a constant the catalogue names
        ("subject", Annotated[str, Meta(description="The incident's id")]),
        ("time", Annotated[datetime, Meta(description="When the event was recorded")]),
        ("sequence", Annotated[str, Meta(pattern=r"^[0-9]+$", description="The log position")]),
        ("datacontenttype", Literal["application/json"]),
        (
            "dataschema",
            Annotated[
                str,
                Meta(
                    description="GET it for `data`'s JSON Schema"
                    " (absolute under LEGATION_PUBLIC_URL)"
                ),
            ],
        ),
        ("data", entry.data),
    ]
    doc = f"A delivery of a `{entry.name}` event: a CloudEvents 1.0 structured-mode body."
    return msgspec.defstruct(
        f"{pascal(entry.name)}CloudEvent", fields, frozen=True, namespace={"__doc__": doc}
    )


ENVELOPES: Final = {entry.name: envelope(entry) for entry in CATALOGUE}


def _signature_header(name: str, description: str) -> Parameter:
    return Parameter(
        name=name,
        param_in="header",
        required=True,
        description=description,
        schema=Schema(type=OpenAPIType.STRING),
    )


PARAMETERS: Final = {
    "webhook-id": _signature_header(
        "webhook-id", "The event's id: the same on every retry, so a receiver can drop repeats."
    ),
    "webhook-timestamp": _signature_header(
        "webhook-timestamp", "Unix seconds when this attempt was signed."
    ),
    "webhook-signature": _signature_header(
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the subscription's secret "
        "(Standard Webhooks); several, space-separated, while a rotated secret is still valid.",
    ),
}
_RESPONSES: Final[dict[str, OpenAPIResponse | Reference]] = {
    "2XX": OpenAPIResponse(
        description="Acknowledged: the subscription moves past this event to the next."
    ),
    "410": OpenAPIResponse(description="Gone: the subscription is deactivated at once."),
    "default": OpenAPIResponse(
        description="Not acknowledged (nor is no answer within 10 s): sent again with the same "
        "webhook-id after about 5 s, 30 s, 2 min, 15 min, 1 h, then hourly; after 3 days of "
        "failures the subscription is deactivated."
    ),
}


def webhook(entry: EventType, envelope_schema: Reference) -> PathItem:
    """What a receiver subscribed to `entry`'s type is POSTed, and how it answers."""
    body = OpenAPIMediaType(schema=envelope_schema)
    return PathItem(
        post=Operation(
            operation_id=f"receive{pascal(entry.name)}",
            summary=f"`{entry.name}`, delivered to a subscription",
            description="POSTed to a subscription's `url` in log order, one event at a time "
            f"(schema_version {entry.schema_version} of the type's data).",
            tags=["subscriptions"],
            parameters=[Reference(ref=_PARAMETER.format(name=name)) for name in PARAMETERS],
            request_body=RequestBody(content={CLOUDEVENTS_JSON: body}, required=True),
            responses=_RESPONSES,
            security=[],  # the receiver checks webhook-signature, no key
        )
    )
