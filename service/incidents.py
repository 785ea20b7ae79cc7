"""An incident stream: commands, and the pure decide/evolve over its events (no I/O)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from msgspec import Struct

from service.actors import actor_code
from service.events import (
    EVENT_TYPES,
    Expulsion,
    Incident,
    IncidentCorrected,
    Metadata,
    NewEvent,
    RecordedEvent,
    Report,
    Text,
    corrected_decoder,
    incident_decoder,
    new_event,
    reported_type,
)
from service.problems import FieldError, InvalidInput, invalid

Status = Literal["active", "retracted"]
ACTOR_FIELDS = ("expelling", "expelled")


class Correction(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request to correct an incident: the fields to change and why."""

    changes: dict[str, Any]
    note: Text | None = None


class CorrectionNote(Struct, frozen=True, kw_only=True):
    """A correction as an incident view lists it."""

    version: int
    changes: dict[str, Any]
    note: str | None
    corrected_at: datetime


class IncidentState(Struct, frozen=True, kw_only=True):
    """An incident folded from its stream."""

    id: UUID
    incident: Incident
    status: Status
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...] = ()


def stream_name(incident_id: UUID) -> str:
    """The log stream that holds one incident."""
    return f"incident-{incident_id}"


def content(report: Report) -> Incident:
    """The incident a report states, without the client-chosen id."""
    fields = {name: getattr(report, name) for name in Incident.__struct_fields__}
    return Incident(**fields)


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
    event_id = keyed or uuid5(_FIRST_EVENT, stream_name(incident_id))
    event = new_event(
        event_id, reported_type(incident), incident, meta, incident.occurred_on, actors(incident)
    )
    return incident_id, event


def decide_report(report: Report) -> Incident:
    """Validate a new report; the incident to record."""
    return validated(content(report))


def decide_correction(state: IncidentState, correction: Correction) -> IncidentCorrected:
    """Correct an incident: the changes applied and the result validated as a whole."""
    if not correction.changes:
        raise InvalidInput("changes must name at least one field", errors=[_empty_changes()])
    merged = msgspec.to_builtins(state.incident) | correction.changes
    merged = {key: value for key, value in merged.items() if value is not None}
    try:
        corrected = msgspec.convert(merged, Incident, strict=True, dec_hook=None)
    except msgspec.ValidationError as exc:
        raise invalid(exc, prefix="changes") from None
    return IncidentCorrected(
        changes=correction.changes,
        note=correction.note,
        incident=validated(corrected, prefix="changes"),
    )


def _empty_changes() -> FieldError:
    return FieldError(field="changes", message="must name at least one field")


def validated(incident: Incident, prefix: str = "") -> Incident:
    """The incident with canonical actor codes; InvalidInput naming every broken rule."""
    errors: list[FieldError] = []
    codes: dict[str, str] = {}
    for name in ACTOR_FIELDS:
        code = actor_code(getattr(incident, name))
        if code is None:
            errors.append(
                FieldError(_path(prefix, name), "is not an ISO 3166-1 code, EU, NATO or UN")
            )
        else:
            codes[name] = code
    if len(codes) == 2 and codes["expelling"] == codes["expelled"]:
        errors.append(
            FieldError(_path(prefix, "expelled"), "an actor cannot expel its own diplomats")
        )
    errors.extend(_count_range_errors(incident, prefix))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return msgspec.structs.replace(incident, **codes)


def _count_range_errors(incident: Incident, prefix: str) -> list[FieldError]:
    if incident.count_range is None:
        return []
    low, high = incident.count_range
    if low <= incident.count <= high:
        return []
    return [
        FieldError(_path(prefix, "count_range"), "must be [low, high] with low <= count <= high")
    ]


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def disputed(incident: Incident) -> bool:
    """Whether sources disagree on the count."""
    return incident.count_range is not None


def actors(incident: Incident) -> tuple[str, ...]:
    """The actors an incident involves, for the log's country filter."""
    return tuple(sorted({incident.expelling, incident.expelled}))


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


def evolve(state: IncidentState | None, event: RecordedEvent) -> IncidentState:
    """The incident after one more event of its stream."""
    if event.type in REPORTED:
        incident_id = UUID(event.stream.removeprefix("incident-"))
        incident = incident_decoder.decode(event.data)
        return reported(incident_id, incident, event.version, event.recorded_at)
    if state is None:
        raise ValueError(f"{event.type} at {event.stream}@{event.version} precedes its report")
    if event.type == "incident.corrected":
        data = corrected_decoder.decode(event.data)
        return corrected(state, data, event.version, event.recorded_at)
    raise ValueError(f"unknown event type {event.type!r}")


REPORTED = frozenset(name for name in EVENT_TYPES if name.endswith(".reported"))


def fold(events: Iterable[RecordedEvent]) -> IncidentState | None:
    """An incident from its stream's events, oldest first (None for an empty stream)."""
    state: IncidentState | None = None
    for event in events:
        state = evolve(state, event)
    return state


class ExpulsionView(Expulsion, frozen=True, kw_only=True):
    """An expulsion as readers see it: its content and its life in the log."""

    id: UUID
    status: Status
    disputed: bool
    version: int
    reported_at: datetime
    updated_at: datetime
    corrections: tuple[CorrectionNote, ...]


IncidentView = ExpulsionView


def incident_view(state: IncidentState) -> IncidentView:
    """The view of an incident served over HTTP."""
    return ExpulsionView(
        **msgspec.structs.asdict(state.incident),
        id=state.id,
        status=state.status,
        disputed=disputed(state.incident),
        version=state.version,
        reported_at=state.reported_at,
        updated_at=state.updated_at,
        corrections=state.corrections,
    )
