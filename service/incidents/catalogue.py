"""The event catalogue: incident content, the events of an incident stream, codecs."""

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from service.log.envelope import Metadata, NewEvent, encode_data

# PostgreSQL cannot store NUL in jsonb text: refuse it at the door (422), not at commit.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Meta(min_length=1, max_length=4000, pattern=NO_NUL)]
Label = Annotated[str, Meta(min_length=1, max_length=300, pattern=NO_NUL)]
ActorCode = Annotated[
    str,
    Meta(
        min_length=2,
        max_length=4,
        description="ISO 3166-1 alpha-2 or alpha-3 (any case), or EU, NATO, UN",
        examples=["RU"],
    ),
]
Controller = Annotated[
    str,
    Meta(
        min_length=2,
        max_length=9,
        description="An actor code, or `contested`",
        examples=["RU", "contested"],
    ),
]
Region = Annotated[
    str,
    Meta(pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", description="ISO 3166-2", examples=["UA-09"]),
]
Count = Annotated[int, Meta(ge=1, le=1_000_000)]
CountRange = Annotated[
    tuple[Count, Count | None],
    Meta(
        description="[low, high] as the sources give it; high null: at least low",
        examples=[[12, 21], [201, None]],
    ),
]
JointActors = Annotated[tuple[ActorCode, ...], Meta(max_length=50)]
Url = Annotated[str, Meta(max_length=2048, pattern=r"^https?://\S+$")]
Measure = Literal[
    "trade", "financial", "travel", "energy", "technology", "diplomatic", "media", "other"
]
References = Annotated[tuple[UUID, ...], Meta(max_length=100)]


class Source(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a report comes from."""

    outlet: Label
    url: Url | None = None
    quoted: Label | None = None
    published_at: Annotated[datetime, Meta(tz=True)] | None = None


Sources = Annotated[tuple[Source, ...], Meta(min_length=1, max_length=100)]


class Place(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A town or site; keyed by `geonames_id` where given, else by country and name."""

    name: Label
    country: ActorCode
    region: Region | None = None
    geonames_id: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None


class Expulsion(
    Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="expulsion", tag_field="kind"
):
    """Diplomats declared persona non grata: `count` of them, or a range, or no number given.

    `joint_expelling` and `joint_expelled` name the other actors a joint count covers.
    """

    occurred_on: date
    expelling: ActorCode
    expelled: ActorCode
    count: Count | None = None
    count_range: CountRange | None = None
    joint_expelling: JointActors = ()
    joint_expelled: JointActors = ()
    deadline: date | None = None
    grounds: Label | None = None
    responds_to: References = ()
    summary: Text | None = None
    sources: Sources


class SanctionsRound(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="sanctions_round",
    tag_field="kind",
):
    """A round of sanctions imposed by one actor on another."""

    occurred_on: date
    imposing: ActorCode
    target: ActorCode
    round: Annotated[int, Meta(ge=1, le=1000)] | None = None
    label: Label | None = None
    measures: Annotated[tuple[Measure, ...], Meta(max_length=8)] = ()
    legal_acts: Annotated[tuple[Label, ...], Meta(max_length=100)] = ()
    responds_to: References = ()
    summary: Text | None = None
    sources: Sources


class TerritorialControl(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="territorial_control",
    tag_field="kind",
):
    """A place reported under an actor's control (or contested)."""

    occurred_on: date
    place: Place
    controller: Controller
    previous_controller: Controller | None = None
    reported_by: Label | None = None
    responds_to: References = ()
    summary: Text | None = None
    sources: Sources


# The content of an incident, whatever its kind: a tagged union on `kind`.
Incident = Expulsion | SanctionsRound | TerritorialControl
INCIDENT_TYPES: Final = (Expulsion, SanctionsRound, TerritorialControl)
INCIDENT_KINDS: Final = tuple(str(kind.__struct_config__.tag) for kind in INCIDENT_TYPES)


class ExpulsionReport(Expulsion, frozen=True, kw_only=True):
    """A newsroom's report of an expulsion; `id` lets the client choose the incident id."""

    id: UUID | None = None


class SanctionsRoundReport(SanctionsRound, frozen=True, kw_only=True):
    """A newsroom's report of a sanctions round; `id` lets the client choose the incident id."""

    id: UUID | None = None


class TerritorialControlReport(TerritorialControl, frozen=True, kw_only=True):
    """A newsroom's report of territorial control; `id` lets the client choose the incident id."""

    id: UUID | None = None


Report = ExpulsionReport | SanctionsRoundReport | TerritorialControlReport


class IncidentCorrected(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incident's content was corrected: `changes` as asked, `incident` as it now reads."""

    changes: dict[str, Any]
    note: Text | None = None
    incident: Incident


class IncidentRetracted(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incident was withdrawn; it stays readable and leaves every standing."""

    note: Text | None = None
    duplicate_of: UUID | None = None


class SourceAdded(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Another source now backs an incident."""

    source: Source


class EventType(Struct, frozen=True):
    """One entry of the catalogue: an event type, its data Struct and its schema version."""

    name: str
    data: type[Struct]
    schema_version: int


CATALOGUE: Final = (
    # 2: count optional, count_range open-ended, joint parties; every version 1 event is valid.
    EventType("expulsion.reported", Expulsion, 2),
    EventType("sanctions_round.reported", SanctionsRound, 1),
    EventType("territorial_control.reported", TerritorialControl, 1),
    EventType("incident.corrected", IncidentCorrected, 2),  # holds an expulsion of version 2
    EventType("incident.retracted", IncidentRetracted, 1),
    EventType("incident.source_added", SourceAdded, 1),
)
EVENT_TYPES: Final = {entry.name: entry for entry in CATALOGUE}


def reported_type(incident: Incident) -> str:
    """The event type that reports an incident of this kind."""
    return f"{incident.__struct_config__.tag}.reported"


# Reusing one encoder and one decoder per type is msgspec's fast path.
encoder: Final = msgspec.json.Encoder()
incident_decoder: Final = msgspec.json.Decoder(Incident)
corrected_decoder: Final = msgspec.json.Decoder(IncidentCorrected)
retracted_decoder: Final = msgspec.json.Decoder(IncidentRetracted)
source_added_decoder: Final = msgspec.json.Decoder(SourceAdded)


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
