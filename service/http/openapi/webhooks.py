"""The document's `webhooks`: what a subscription's receiver is sent, one entry per event type.

Each delivery is a CloudEvents 1.0 structured-mode body (service/subscribers/cloud_events.py)
whose `data` is the event type's, signed per Standard Webhooks. The envelopes here are
Structs for the document only: the same fields as CloudEvent, with `type` and `data` typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, NamedTuple, cast

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
from service.subscribers.cloud_events import PING, STANDING_CHANGED, Ping, StandingChanged

CLOUDEVENTS_JSON: Final = "application/cloudevents+json"
DATASCHEMA: Final = "GET it for `data`'s JSON Schema (absolute under LEGATION_PUBLIC_URL)"
_PARAMETER = "#/components/parameters/{name}"


def pascal(name: str) -> str:
    """`incident.source_added` as `IncidentSourceAdded`."""
    return "".join(part.capitalize() for part in name.replace(".", "_").split("_"))


class Delivery(NamedTuple):
    """One kind of message a subscription's receiver is POSTed: a CloudEvent type."""

    name: str
    data: type[msgspec.Struct]
    when: str  # when it is sent
    source: str
    subject: str
    sequence: str | None  # what the position is; None: a message outside log order has none
    schema_version: int | None  # of `data`, served at `dataschema`; None: no dataschema
    time: str = "When the event was recorded"


def _of_the_log(entry: EventType) -> Delivery:
    return Delivery(
        entry.name,
        entry.data,
        "POSTed to a subscription's `url` in log order, one event at a time "
        f"(schema_version {entry.schema_version} of the type's data).",
        "`/v1/incidents/<incident id>`",
        "The incident's id",
        "The log position",
        entry.schema_version,
    )


DELIVERIES: Final = (
    *(_of_the_log(entry) for entry in CATALOGUE),
    Delivery(
        STANDING_CHANGED,
        StandingChanged,
        "POSTed to a subscription with the `standings` topic, in log order: one per country "
        "whose standing an event changed, with its figures before and after the event.",
        "`/v1/countries/<code>`",
        "The country's code",
        "The log position of the event that changed the standing",
        None,
    ),
    Delivery(
        PING,
        Ping,
        "POSTed once by `POST /v1/subscriptions/{id}/ping`, outside log order: it neither "
        "waits for nor moves the subscription's position.",
        "`/v1/subscriptions/<subscription id>`",
        "The subscription's id",
        None,
        None,
        "When the ping was sent",
    ),
)


def _described(kind: Any, description: str) -> Any:
    return Annotated[kind, Meta(description=description)]


def envelope(delivery: Delivery) -> type[msgspec.Struct]:
    """The CloudEvent a receiver is sent for this kind of delivery."""
    fields: list[tuple[str, Any]] = [
        ("specversion", Literal["1.0"]),
        ("id", _described(str, "The delivery's id: webhook-id, the same on every retry")),
        ("source", _described(str, delivery.source)),
        ("type", cast(Any, Literal)[delivery.name]),  # a constant: the delivery's type
        ("subject", _described(str, delivery.subject)),
        ("time", _described(datetime, delivery.time)),
    ]
    if delivery.sequence is not None:
        pattern = Meta(pattern=r"^[0-9]+$", description=delivery.sequence)
        fields.append(("sequence", Annotated[str, pattern]))
    fields.append(("datacontenttype", Literal["application/json"]))
    if delivery.schema_version is not None:
        fields.append(("dataschema", _described(str, DATASCHEMA)))
    fields.append(("data", delivery.data))
    doc = f"A delivery of `{delivery.name}`: a CloudEvents 1.0 structured-mode body."
    return msgspec.defstruct(
        f"{pascal(delivery.name)}CloudEvent", fields, frozen=True, namespace={"__doc__": doc}
    )


ENVELOPES: Final = {delivery.name: envelope(delivery) for delivery in DELIVERIES}


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


def webhook(delivery: Delivery, envelope_schema: Reference) -> PathItem:
    """What a receiver is POSTed for this kind of delivery, and how it answers."""
    body = OpenAPIMediaType(schema=envelope_schema)
    return PathItem(
        post=Operation(
            operation_id=f"receive{pascal(delivery.name)}",
            summary=f"`{delivery.name}`, delivered to a subscription",
            description=delivery.when,
            tags=["subscriptions"],
            parameters=[Reference(ref=_PARAMETER.format(name=name)) for name in PARAMETERS],
            request_body=RequestBody(content={CLOUDEVENTS_JSON: body}, required=True),
            responses=_RESPONSES,
            security=[],  # the receiver checks webhook-signature, no key
        )
    )
