"""A delivery's body and signature: CloudEvents 1.0, signed per Standard Webhooks.

Three kinds of message: a log event, a standing that an event changed
(`legation.standing.changed`), and a ping (`legation.ping`, outside log order).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import msgspec

from service.projections.standing_changes import StandingChange
from service.projections.standings_views import Standing
from service.subscribers.data_schemas import dataschema
from service.subscribers.fanout import LiveEvent

STANDING_CHANGED: Final = "legation.standing.changed"
PING: Final = "legation.ping"
_encoder = msgspec.json.Encoder()


def new_secret() -> str:
    """A signing secret in Standard Webhooks' form: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    # The key decoded and hashed into the HMAC's state once, copied for each message.
    return hmac.new(base64.b64decode(secret.removeprefix("whsec_")), digestmod=hashlib.sha256)


def _signed(secret: str, message: bytes) -> str:
    mac = _keyed(secret).copy()
    mac.update(message)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value: v1, + base64 HMAC-SHA256 of id.timestamp.body."""
    return signatures((secret,), message_id, timestamp, body)


def signatures(secrets_: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated, as Standard Webhooks allows while a
    secret is being rotated (a receiver accepts the message if any one verifies)."""
    message = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(_signed(secret, message) for secret in secrets_)


class CloudEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """The structured-mode CloudEvents 1.0 body of a delivery."""

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: str
    datacontenttype: str
    data: msgspec.Raw
    sequence: str | None = None  # the log position; a ping has none
    dataschema: str | None = None  # a catalogue event's; derived notifications have none yet


def _time(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def cloud_event(live: LiveEvent, base: str = "") -> bytes:
    """One log event as a CloudEvent (sequence is the position, as CloudEvents' string);
    its dataschema under `base`, the API's public URL when one is configured."""
    event = live.event
    incident = event.stream.removeprefix("incident-")
    return _encoder.encode(
        CloudEvent(
            specversion="1.0",
            id=str(event.id),
            source=f"/v1/incidents/{incident}",
            type=event.type,
            subject=incident,
            time=_time(event.recorded_at),
            sequence=str(event.position),
            datacontenttype="application/json",
            dataschema=dataschema(event.type, event.schema_version, base),
            data=event.data,
        )
    )


class StandingChanged(msgspec.Struct, frozen=True):
    """The data of a standing notification: an actor's standing at the position before the
    event and at the event's, each as GET /v1/countries/{code}?known_at=N answers it."""

    country: str
    position: int
    event_id: UUID
    event_type: str
    before: Standing
    after: Standing


def standing_changed(live: LiveEvent, change: StandingChange) -> StandingChanged:
    """The notification of one standing the event `live` changed."""
    event = live.event
    return StandingChanged(
        change.country, event.position, event.id, event.type, change.before, change.after
    )


def notice_id(event_id: UUID, country: str) -> UUID:
    """The id of a standing notification: the same on every retry, and for every process."""
    return uuid.uuid5(event_id, country)


def standing_event(live: LiveEvent, change: StandingChange) -> bytes:
    """A standing notification as a CloudEvent."""
    event = live.event
    return _encoder.encode(
        CloudEvent(
            specversion="1.0",
            id=str(notice_id(event.id, change.country)),
            source=f"/v1/countries/{change.country}",
            type=STANDING_CHANGED,
            subject=change.country,
            time=_time(event.recorded_at),
            sequence=str(event.position),
            datacontenttype="application/json",
            data=msgspec.Raw(_encoder.encode(standing_changed(live, change))),
        )
    )


class Ping(msgspec.Struct, frozen=True):
    """The data of a ping: which subscription, and where its cursor stands."""

    subscription: UUID
    position: int


def ping_event(message_id: UUID, subscription: UUID, position: int) -> bytes:
    """A ping as a CloudEvent: no sequence, since it stands outside log order."""
    return _encoder.encode(
        CloudEvent(
            specversion="1.0",
            id=str(message_id),
            source=f"/v1/subscriptions/{subscription}",
            type=PING,
            subject=str(subscription),
            time=_time(datetime.now(UTC)),
            datacontenttype="application/json",
            data=msgspec.Raw(_encoder.encode(Ping(subscription, position))),
        )
    )
