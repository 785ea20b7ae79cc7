"""A delivery's body and signature: CloudEvents 1.0, signed per Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import msgspec

from service.subscribers.data_schemas import dataschema
from service.subscribers.fanout import LiveEvent

_encoder = msgspec.json.Encoder()


def new_secret() -> str:
    """A signing secret in Standard Webhooks' form: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value: v1, + base64 HMAC-SHA256 of id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class CloudEvent(msgspec.Struct, frozen=True):
    """The structured-mode CloudEvents 1.0 body of a delivery."""

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: str
    sequence: str
    datacontenttype: str
    dataschema: str
    data: msgspec.Raw


def cloud_event(live: LiveEvent) -> bytes:
    """One log event as a CloudEvent (sequence is the position, as CloudEvents' string)."""
    event = live.event
    incident = event.stream.removeprefix("incident-")
    return _encoder.encode(
        CloudEvent(
            specversion="1.0",
            id=str(event.id),
            source=f"/v1/incidents/{incident}",
            type=event.type,
            subject=incident,
            time=event.recorded_at.isoformat().replace("+00:00", "Z"),
            sequence=str(event.position),
            datacontenttype="application/json",
            dataschema=dataschema(event.type, event.schema_version),
            data=event.data,
        )
    )
