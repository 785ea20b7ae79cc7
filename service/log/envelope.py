"""The envelope every event travels in: as appended, as recorded, and who appended it."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Final
from uuid import UUID

import msgspec
from msgspec import Struct

if TYPE_CHECKING:  # the envelope travels through the pure domain: no driver imported
    import asyncpg


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


class FoldedEvent(msgspec.Struct, frozen=True, gc=False):
    """What folding an event reads of it: a RecordedEvent without id, schema version,
    occurred_on and metadata, which no read model holds. A rebuild reads millions:
    each column left out is one value less to send and decode.
    """

    position: int
    stream: str
    version: int
    type: str
    recorded_at: datetime
    data: bytes


# What evolve and the version changes read of an event.
Folded = RecordedEvent | FoldedEvent


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


# The columns of `events` a RecordedEvent holds, in the order `recorded` reads them.
EVENT_COLUMNS: Final = (
    "position, id, stream, version, type, schema_version, occurred_on, recorded_at, data, metadata"
)


def recorded(row: "asyncpg.Record") -> RecordedEvent:
    """The event in a row that starts with EVENT_COLUMNS."""
    return RecordedEvent(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        msgspec.Raw(row[8]),
        msgspec.Raw(row[9]),
    )
