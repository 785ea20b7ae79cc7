"""An incident stream: commands, and the pure decide/evolve over its events (no I/O)."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final, Literal
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from msgspec import Struct

from service.incidents.catalogue import (
    INCIDENT_TYPES,
    Incident,
    IncidentCorrected,
    IncidentRetracted,
    Report,
    Source,
    SourceAdded,
    Text,
    corrected_decoder,
    incident_decoder,
    new_event,
    reported_type,
    retracted_decoder,
    source_added_decoder,
)
from service.incidents.content import actors, validated
from service.incidents.errors import FieldError, Invalid, invalid

# Refused by decide_correction and decide_retraction, so named beside them too.
from service.incidents.errors import IncidentAlreadyRetracted as IncidentAlreadyRetracted
from service.log.envelope import Folded, Metadata, NewEvent, RecordedEvent

Status = Literal["active", "retracted"]
FIELDS_OF: Final = {
    str(kind.__struct_config__.tag): {"kind", *kind.__struct_fields__} for kind in INCIDENT_TYPES
}


class Correction(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request to correct an incident: top-level fields to replace (null removes one)."""

    changes: dict[str, Any]
    note: Text | None = None


class Retraction(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request to retract an incident, e.g. as a duplicate of another."""

    note: Text | None = None
    duplicate_of: UUID | None = None


class CorrectionNote(Struct, frozen=True, kw_only=True):
    """A correction as an incident view lists it."""

    version: int
    changes: dict[str, Any]
    note: str | None
    corrected_at: datetime


class RetractionNote(Struct, frozen=True, kw_only=True):
    """Why and when an incident was retracted."""

    version: int
    note: str | None
    duplicate_of: UUID | None
    retracted_at: datetime


class IncidentState(Struct, frozen=True, kw_only=True):
    """An incident folded from its stream."""

    id: UUID
    incident: Incident
    status: Status
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...] = ()
    retraction: RetractionNote | None = None


def stream_name(incident_id: UUID) -> str:
    """The log stream that holds one incident."""
    return f"incident-{incident_id}"


# Event ids derived from an Idempotency-Key make a retried request a re-append of
# the same event, which the log recognises; nothing else needs to remember keys.
_IDEMPOTENT = uuid5(NAMESPACE_URL, "urn:legation:idempotency-key")
_FIRST_EVENT = uuid5(NAMESPACE_URL, "urn:legation:first-event")


def keyed_event_id(actor: str, idempotency_key: str) -> UUID:
    """The event id a request with this Idempotency-Key appends, on every retry."""
    return uuid5(_IDEMPOTENT, f"{actor}\n{idempotency_key}")


def report_event(
    client_id: UUID | None, incident: Incident, meta: Metadata
) -> tuple[UUID, NewEvent]:
    """The incident id and the event that reports `incident`.

    The ids are deterministic where the client gave an id or an Idempotency-Key,
    so re-sending the same report appends nothing.
    """
    key = meta.idempotency_key
    keyed = keyed_event_id(meta.actor, key) if key else None
    incident_id = client_id or keyed or uuid4()
    _refuse_self_reference(incident_id, incident.responds_to, "responds_to")
    # A client-chosen id makes a re-sent report the same event; a server-chosen
    # id is new every time, so its event id may be random too.
    first_event = uuid5(_FIRST_EVENT, stream_name(incident_id)) if client_id else uuid4()
    event_id = keyed or first_event
    event = new_event(
        event_id, reported_type(incident), incident, meta, incident.occurred_on, actors(incident)
    )
    return incident_id, event


def content(report: Report) -> Incident:
    """The incident a report states, without the client-chosen id."""
    kind = next(kind for kind in INCIDENT_TYPES if isinstance(report, kind))
    incident: Incident = kind(**{name: getattr(report, name) for name in kind.__struct_fields__})
    return incident


def decide_report(report: Report) -> Incident:
    """Validate a new report; the incident to record."""
    return validated(content(report))


def decide_correction(state: IncidentState, correction: Correction) -> IncidentCorrected:
    """Correct an incident: the changes applied and the result validated as a whole."""
    _refuse_if_retracted(state, "corrected")
    if not correction.changes:
        error = FieldError(field="changes", message="must name at least one field")
        raise Invalid("changes must name at least one field", errors=[error])
    _refuse_unknown_fields(state.incident, correction.changes)
    try:
        corrected = msgspec.convert(_merged(state.incident, correction.changes), Incident)
    except msgspec.ValidationError as exc:
        raise invalid(exc, prefix="changes") from None
    _refuse_self_reference(state.id, corrected.responds_to, "changes.responds_to")
    return IncidentCorrected(
        changes=correction.changes,
        note=correction.note,
        incident=validated(corrected, prefix="changes"),
    )


def _refuse_unknown_fields(incident: Incident, changes: dict[str, Any]) -> None:
    # A null would pass the whole-incident check below (it removes the field) and
    # leave the name in the log for good. The fields are those of the kind the
    # incident has after the change; an unknown kind is named by that check.
    kind = changes.get("kind", incident.__struct_config__.tag)
    if not isinstance(kind, str) or kind not in FIELDS_OF:
        return
    errors = [
        FieldError(field=f"changes.{name}", message=f"is not a field of a {kind} incident")
        for name in changes
        if name not in FIELDS_OF[kind]
    ]
    if errors:
        raise Invalid(f"{errors[0].field}: {errors[0].message}", errors=errors)


def _merged(incident: Incident, changes: dict[str, Any]) -> dict[str, Any]:
    current: dict[str, Any] = msgspec.to_builtins(incident)
    kind = changes.get("kind", current["kind"])
    if kind != current["kind"] and isinstance(kind, str) and kind in FIELDS_OF:
        # A new kind keeps the fields both kinds share; the rest must be given.
        current = {name: value for name, value in current.items() if name in FIELDS_OF[kind]}
    merged = current | changes
    return {name: value for name, value in merged.items() if value is not None}


def decide_retraction(state: IncidentState, retraction: Retraction) -> IncidentRetracted:
    """Retract an incident once; it cannot be a duplicate of itself."""
    _refuse_if_retracted(state, "retracted again")
    if retraction.duplicate_of is not None:
        _refuse_self_reference(state.id, (retraction.duplicate_of,), "duplicate_of")
    return IncidentRetracted(note=retraction.note, duplicate_of=retraction.duplicate_of)


def decide_source(state: IncidentState, source: Source) -> SourceAdded | None:
    """Add a source; None when the incident already cites exactly this one."""
    if source in state.incident.sources:
        return None
    if len(state.incident.sources) >= 100:
        error = FieldError(field="sources", message="an incident cites at most 100 sources")
        raise Invalid(error.message, errors=[error])
    return SourceAdded(source=source)


def _refuse_if_retracted(state: IncidentState, action: str) -> None:
    if state.status == "retracted":
        raise IncidentAlreadyRetracted(state.id, action)


def _refuse_self_reference(incident_id: UUID, ids: Iterable[UUID], field: str) -> None:
    if incident_id in ids:
        error = FieldError(field=field, message="an incident cannot refer to itself")
        raise Invalid(f"{field}: {error.message}", errors=[error])


def reported(incident_id: UUID, incident: Incident, version: int, at: datetime) -> IncidentState:
    """A newly reported incident."""
    return IncidentState(
        id=incident_id,
        incident=incident,
        status="active",
        version=version,
        reported_at=at,
        updated_at=at,
    )


def corrected(
    state: IncidentState, event: IncidentCorrected, version: int, at: datetime
) -> IncidentState:
    """The incident as a correction leaves it."""
    note = CorrectionNote(version=version, changes=event.changes, note=event.note, corrected_at=at)
    return msgspec.structs.replace(
        state,
        incident=event.incident,
        version=version,
        updated_at=at,
        corrections=(*state.corrections, note),
    )


def retracted(
    state: IncidentState, event: IncidentRetracted, version: int, at: datetime
) -> IncidentState:
    """The incident as a retraction leaves it."""
    note = RetractionNote(
        version=version, note=event.note, duplicate_of=event.duplicate_of, retracted_at=at
    )
    return msgspec.structs.replace(
        state, status="retracted", version=version, updated_at=at, retraction=note
    )


def source_added(
    state: IncidentState, event: SourceAdded, version: int, at: datetime
) -> IncidentState:
    """The incident with one more source."""
    incident = msgspec.structs.replace(
        state.incident, sources=(*state.incident.sources, event.source)
    )
    return msgspec.structs.replace(state, incident=incident, version=version, updated_at=at)


Evolve = Callable[[IncidentState, Any, int, datetime], IncidentState]
# What each event of an existing incident does to it, with the decoder of its data.
TRANSITIONS: Final[dict[str, tuple[Evolve, msgspec.json.Decoder[Any]]]] = {
    "incident.corrected": (corrected, corrected_decoder),
    "incident.retracted": (retracted, retracted_decoder),
    "incident.source_added": (source_added, source_added_decoder),
}


def transition(
    state: IncidentState, event_type: str, data: Struct, version: int, at: datetime
) -> IncidentState:
    """The incident after one more event (its data decoded) recorded at `version`, `at`."""
    if event_type not in TRANSITIONS:
        raise ValueError(f"unknown event type {event_type!r}")
    step, _ = TRANSITIONS[event_type]
    return step(state, data, version, at)


def evolve(state: IncidentState | None, event: Folded) -> IncidentState:
    """The incident after one more event of its stream."""
    at, version = event.recorded_at, event.version
    if event.type in REPORTED:
        # msgspec parses the canonical form stream names hold at half the cost of UUID().
        incident_id = msgspec.convert(event.stream.removeprefix("incident-"), UUID)
        return reported(incident_id, incident_decoder.decode(event.data), version, at)
    if state is None:
        raise ValueError(f"{event.type} at {event.stream}@{event.version} precedes its report")
    if event.type not in TRANSITIONS:
        raise ValueError(f"unknown event type {event.type!r}")
    _, decoder = TRANSITIONS[event.type]
    return transition(state, event.type, decoder.decode(event.data), version, at)


REPORTED: Final = frozenset(f"{kind}.reported" for kind in FIELDS_OF)


def fold(events: Iterable[RecordedEvent]) -> IncidentState | None:
    """An incident from its stream's events, oldest first (None for an empty stream)."""
    state: IncidentState | None = None
    for event in events:
        state = evolve(state, event)
    return state
