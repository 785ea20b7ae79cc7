"""The envelope every event travels in: as appended, as recorded, and who appended it."""

from datetime import date, datetime
from typing import Final
from uuid import UUID

import msgspec
from msgspec import Struct


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended; `data` and `metadata` are encoded JSON objects."""

    id: UUID
    type: str
    schema_version: int
    data: msgspec.Raw
    occurred_on: date | None = None
    countries: tuple[str, ...] = ()
    metadata: msgspec.Raw = msgspec.Raw(b"{}")


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as the log holds it; `data` and `metadata` stay encoded JSON."""

    position: int
    id: UUID
    stream: str
    version: int
    type: str
    schema_version: int
    occurred_on: date | None
    recorded_at: datetime
    data: msgspec.Raw
    metadata: msgspec.Raw


class Metadata(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who appended an event and in answer to what."""

    actor: str
    correlation_id: str
    causation_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


_encoder: Final = msgspec.json.Encoder()


def encode_data(data: Struct) -> msgspec.Raw:
    """Event data as the log stores it."""
    return msgspec.Raw(_encoder.encode(data))
