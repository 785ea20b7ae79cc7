"""The event catalogue: incident content, the events of an incident stream, codecs."""

from datetime import date, datetime
from typing import Annotated, Any, Final
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

Text = Annotated[str, Meta(min_length=1, max_length=4000)]
Label = Annotated[str, Meta(min_length=1, max_length=300)]
ActorCode = Annotated[
    str,
    Meta(
        min_length=2,
        max_length=4,
        description="ISO 3166-1 alpha-2 or alpha-3 (any case), or EU, NATO, UN",
        examples=["RU"],
    ),
]
Count = Annotated[int, Meta(ge=1, le=1_000_000)]
Url = Annotated[str, Meta(max_length=2048, pattern=r"^https?://\S+$")]


class Source(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a report comes from."""

    outlet: Label
    url: Url | None = None
    quoted: Label | None = None
    published_at: Annotated[datetime, Meta(tz=True)] | None = None


class Expulsion(
    Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="expulsion", tag_field="kind"
):
    """Diplomats declared persona non grata by one actor."""

    occurred_on: date
    expelling: ActorCode
    expelled: ActorCode
    count: Count
    count_range: tuple[Count, Count] | None = None
    deadline: date | None = None
    grounds: Label | None = None
    responds_to: Annotated[tuple[UUID, ...], Meta(max_length=100)] = ()
    summary: Text | None = None
    sources: Annotated[tuple[Source, ...], Meta(min_length=1, max_length=100)]


# The content of an incident, whatever its kind (a tagged union on `kind`).
Incident = Expulsion
INCIDENT_KINDS: Final = ("expulsion",)


class ExpulsionReport(Expulsion, frozen=True, kw_only=True):
    """A newsroom's report of an expulsion; `id` lets the client choose the incident id."""

    id: UUID | None = None


Report = ExpulsionReport


class IncidentCorrected(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incident's content was corrected: `changes` as asked, `incident` as it now reads."""

    changes: dict[str, Any]
    note: Text | None = None
    incident: Incident


class EventType(Struct, frozen=True):
    """One entry of the catalogue: an event type, its data Struct and its schema version."""

    name: str
    data: type[Struct]
    schema_version: int


CATALOGUE: Final = (
    EventType("expulsion.reported", Expulsion, 1),
    EventType("incident.corrected", IncidentCorrected, 1),
)
EVENT_TYPES: Final = {entry.name: entry for entry in CATALOGUE}


def reported_type(incident: Incident) -> str:
    """The event type that reports an incident of this kind."""
    return f"{incident.__struct_config__.tag}.reported"


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


# Reusing one encoder and one decoder per type is msgspec's fast path.
encoder: Final = msgspec.json.Encoder()
incident_decoder: Final = msgspec.json.Decoder(Incident)
corrected_decoder: Final = msgspec.json.Decoder(IncidentCorrected)


def encode_data(data: Struct) -> msgspec.Raw:
    """Event data as the log stores it."""
    return msgspec.Raw(encoder.encode(data))


def new_event(
    event_id: UUID,
    event_type: str,
    data: Struct,
    metadata: Metadata,
    occurred_on: date | None,
    countries: tuple[str, ...],
) -> NewEvent:
    """An event of the catalogue, encoded for the log."""
    return NewEvent(
        id=event_id,
        type=event_type,
        schema_version=EVENT_TYPES[event_type].schema_version,
        data=encode_data(data),
        occurred_on=occurred_on,
        countries=countries,
        metadata=encode_data(metadata),
    )
