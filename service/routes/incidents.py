"""Incidents: report, correct and read one incident."""

from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter

from service.events import IncidentCorrected, Metadata, Report, new_event
from service.headers import POSITION, etag, if_match_version, none_match
from service.incidents import (
    Correction,
    IncidentState,
    IncidentView,
    actors,
    corrected,
    decide_correction,
    decide_report,
    fold,
    incident_view,
    keyed_event_id,
    report_event,
    reported,
    stream_name,
)
from service.problems import Conflict, InvalidInput, NotFound, PreconditionFailed
from service.routes.bodies import json_body
from service.runtime import Runtime
from service.store import EventIdReused, WrongExpectedVersion, read_stream

_CORRECTION_RETRIES = 3

report_decoder = msgspec.json.Decoder(Report)
correction_decoder = msgspec.json.Decoder(Correction)

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retrying with the same key and body returns the original response.",
    ),
]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", max_length=64)]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=1024)]


def acting_key(request: Request[Any, Any, Any]) -> str:
    """The name of the API key behind the request ('anonymous' without one)."""
    return str(request.scope.get("legation_actor", "anonymous"))


def metadata(request: Request[Any, Any, Any], idempotency_key: str | None) -> Metadata:
    """Who appends, and the request it answers."""
    request_id = request.headers.get("x-request-id") or str(uuid4())
    return Metadata(
        actor=acting_key(request),
        correlation_id=request_id[:128],
        idempotency_key=idempotency_key,
    )


def incident_response(
    state: IncidentState, position: int, status_code: int = 200, location: bool = False
) -> Response[IncidentView]:
    """An incident view with its ETag and log position."""
    headers = {"ETag": etag(state.version), POSITION: str(position)}
    if location:
        headers["Location"] = f"/v1/incidents/{state.id}"
    return Response(incident_view(state), status_code=status_code, headers=headers)


async def load(
    runtime: Runtime, incident_id: UUID, up_to_version: int | None = None
) -> tuple[IncidentState, int]:
    """An incident folded from its stream and the position of its last event; 404 if none."""
    async with runtime.pool.acquire() as conn:
        events = await read_stream(conn, stream_name(incident_id), up_to_version)
    state = fold(events)
    if state is None:
        raise NotFound(f"no incident {incident_id}")
    return state, events[-1].position


@post(
    "/v1/incidents",
    status_code=201,
    tags=["incidents"],
    summary="Report an incident",
    opt={"body": Report, "problems": (400, 409, 413, 415, 422)},
    responses=None,
)
async def report_incident(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    idempotency_key: IdempotencyKey = None,
) -> Response[IncidentView]:
    """Append a new incident; a retry (same Idempotency-Key or id, same body) changes nothing."""
    report = await json_body(request, report_decoder)
    incident = decide_report(report)
    incident_id, event = report_event(report.id, incident, metadata(request, idempotency_key))
    stream = stream_name(incident_id)
    try:
        appended = await runtime.appends.append(stream, 0, [event])
    except WrongExpectedVersion:
        raise Conflict(f"incident {incident_id} already exists") from None
    except EventIdReused:
        raise _reused(idempotency_key, incident_id) from None
    position = appended.positions[-1]
    if appended.duplicate:
        state, _ = await load(runtime, incident_id, appended.versions[-1])
    else:
        state = reported(incident_id, incident, appended.versions[-1], appended.recorded_at)
    return incident_response(state, position, 201, location=True)


def _reused(idempotency_key: str | None, incident_id: UUID) -> Exception:
    if idempotency_key is not None:
        return InvalidInput("this Idempotency-Key was already used with a different request")
    return Conflict(f"incident {incident_id} already exists with other content")


@post(
    "/v1/incidents/{incident_id:uuid}/corrections",
    status_code=200,
    tags=["incidents"],
    summary="Correct an incident",
    opt={"body": Correction, "problems": (400, 404, 409, 412, 413, 415, 422)},
)
async def correct_incident(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    incident_id: FromPath[UUID],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[IncidentView]:
    """Append a correction; the corrected incident is validated as a whole."""
    correction = await json_body(request, correction_decoder)
    expected = if_match_version(if_match)
    meta = metadata(request, idempotency_key)
    event_id = keyed_event_id(meta.actor, idempotency_key) if idempotency_key else uuid4()
    for _ in range(_CORRECTION_RETRIES):
        state, _ = await load(runtime, incident_id)
        change = decide_correction(state, correction)
        try:
            return await _append_correction(runtime, state, change, event_id, meta, expected)
        except WrongExpectedVersion as exc:
            if expected is not None:
                raise _stale(expected, exc.actual) from None
        except EventIdReused:
            raise _reused(idempotency_key, incident_id) from None
    raise Conflict("the incident kept changing while the correction was applied; retry")


def _stale(expected: int, actual: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"If-Match named version {expected}, the incident is at version {actual}",
        current_version=actual,
    )


async def _append_correction(
    runtime: Runtime,
    state: IncidentState,
    change: IncidentCorrected,
    event_id: UUID,
    meta: Metadata,
    expected: int | None,
) -> Response[IncidentView]:
    countries = tuple(sorted({*actors(state.incident), *actors(change.incident)}))
    event = new_event(
        event_id, "incident.corrected", change, meta, change.incident.occurred_on, countries
    )
    stream = stream_name(state.id)
    # If-Match is checked by the log itself, after the event id: a retried
    # request is recognised even though the incident has moved on since.
    version = state.version if expected is None else expected
    appended = await runtime.appends.append(stream, version, [event])
    if appended.duplicate:
        replayed, _ = await load(runtime, state.id, appended.versions[-1])
        return incident_response(replayed, appended.positions[-1])
    after = corrected(state, change, appended.versions[-1], appended.recorded_at)
    return incident_response(after, appended.positions[-1])


@get(
    "/v1/incidents/{incident_id:uuid}",
    tags=["incidents"],
    summary="Read an incident",
    opt={"problems": (404,)},
)
async def read_incident(
    runtime: NamedDependency[Runtime],
    incident_id: FromPath[UUID],
    if_none_match: IfNoneMatch = None,
) -> Response[IncidentView | None]:
    """The incident's current view; 304 when If-None-Match names its ETag."""
    state, position = await load(runtime, incident_id)
    if none_match(if_none_match, state.version):
        headers = {"ETag": etag(state.version), POSITION: str(position)}
        return Response(None, status_code=304, headers=headers)
    return incident_response(state, position)  # type: ignore[return-value]


ROUTES = [report_incident, correct_incident, read_incident]
