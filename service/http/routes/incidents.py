"""Incidents: report, correct, retract, cite, and read one incident."""

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter

from service.http import request_ids
from service.http.actor_params import actor_param
from service.http.bodies import json_body
from service.http.consistency import MinPosition, await_position
from service.http.headers import POSITION, etag, if_match_versions, none_match
from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.problems import Conflict, InvalidInput, NotFound, PreconditionFailed
from service.http.runtime import Runtime
from service.incidents.catalogue import Report, Source, new_event
from service.incidents.domain import (
    Correction,
    IncidentState,
    Retraction,
    Status,
    actors,
    corrected,
    decide_correction,
    decide_report,
    decide_retraction,
    decide_source,
    fold,
    keyed_event_id,
    report_event,
    reported,
    retracted,
    source_added,
    stream_name,
)
from service.incidents.views import IncidentView, incident_view
from service.log.envelope import Metadata, RecordedEvent
from service.log.store import EventIdReused, WrongExpectedVersion, read_stream
from service.projections.incident_list import Cursor, IncidentFilter
from service.projections.incident_list import list_incidents as read_incidents
from service.projections.projector import checkpoint

_RETRIES = 3

report_decoder = msgspec.json.Decoder(Report)

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retrying with the same key and body returns the original response.",
    ),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=64,
        description='The ETag read, e.g. "3" (or a list of them, or *)',
    ),
]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=1024)]
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 412, 413, 415, 422)


def acting_key(request: Request[Any, Any, Any]) -> str:
    """The name of the API key behind the request ('anonymous' without one)."""
    return str(request.scope.get("legation_actor", "anonymous"))


def metadata(request: Request[Any, Any, Any], idempotency_key: str | None) -> Metadata:
    """Who appends, and the request it answers."""
    request_id = request_ids.request_id(request.scope) or str(uuid4())
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


async def load_events(
    runtime: Runtime, incident_id: UUID, up_to_version: int | None = None
) -> list[RecordedEvent]:
    """The incident's events, oldest first; 404 if there are none."""
    async with runtime.pool.acquire() as conn:
        events = await read_stream(conn, stream_name(incident_id), up_to_version)
    if not events:
        raise NotFound(f"no incident {incident_id}")
    return events


async def load(
    runtime: Runtime, incident_id: UUID, up_to_version: int | None = None
) -> tuple[IncidentState, int]:
    """An incident folded from its stream and the position of its last event; 404 if none."""
    events = await load_events(runtime, incident_id, up_to_version)
    state = fold(events)
    assert state is not None  # a non-empty stream folds to a state
    return state, events[-1].position


@post(
    "/v1/incidents",
    status_code=201,
    tags=["incidents"],
    summary="Report an incident",
    opt={
        "body": Report,
        "problems": (400, 401, 403, 409, 413, 415, 422),
        "scope": "write",
    },
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
    try:
        appended = await runtime.appends.append(stream_name(incident_id), 0, [event])
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


Transition = Callable[[IncidentState, Any, int, datetime], IncidentState]
TRANSITIONS: dict[str, Transition] = {
    "incident.corrected": corrected,
    "incident.retracted": retracted,
    "incident.source_added": source_added,
}


class Change(msgspec.Struct, frozen=True):
    """A lifecycle command bound to its request: what to decide and how to record it."""

    incident_id: UUID
    event_type: str
    decide: Callable[[IncidentState], msgspec.Struct | None]
    meta: Metadata
    expected: frozenset[int] | None  # the versions If-Match accepts


async def apply_change(runtime: Runtime, change: Change) -> Response[IncidentView]:
    """Decide against the current incident and append; If-Match and retries honoured."""
    key = change.meta.idempotency_key
    event_id = keyed_event_id(change.meta.actor, key) if key else uuid4()
    if key is not None and (replayed := await _replay(runtime, change, event_id)):
        return replayed
    for _ in range(_RETRIES):
        state, position = await load(runtime, change.incident_id)
        if change.expected is not None and state.version not in change.expected:
            raise _stale(change.expected, state.version)
        data = change.decide(state)
        if data is None:  # nothing to record: already so
            return incident_response(state, position)
        try:
            return await _append(runtime, change, state, data, event_id)
        except WrongExpectedVersion as exc:
            if change.expected is not None:
                raise _stale(change.expected, exc.actual) from None
        except EventIdReused:
            raise _reused(key, change.incident_id) from None
    raise Conflict("the incident kept changing while the request was applied; retry")


async def request_hash(request: Request[Any, Any, Any]) -> str:
    """What a request asked for: method, path and body (to recognise a reused key)."""
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()[:32]


async def _replay(
    runtime: Runtime, change: Change, event_id: UUID
) -> Response[IncidentView] | None:
    async with runtime.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT stream, version, type, metadata->>'request_hash' AS request_hash"
            " FROM events WHERE id = $1",
            event_id,
        )
    if row is None:
        return None
    same = (row["stream"], row["type"], row["request_hash"]) == (
        stream_name(change.incident_id),
        change.event_type,
        change.meta.request_hash,
    )
    if not same:
        raise _reused(change.meta.idempotency_key, change.incident_id)
    state, position = await load(runtime, change.incident_id, row["version"])
    return incident_response(state, position)


async def _append(
    runtime: Runtime, change: Change, state: IncidentState, data: msgspec.Struct, event_id: UUID
) -> Response[IncidentView]:
    at_hand = TRANSITIONS[change.event_type](state, data, state.version + 1, state.updated_at)
    countries = tuple(sorted({*actors(state.incident), *actors(at_hand.incident)}))
    occurred_on = at_hand.incident.occurred_on
    event = new_event(event_id, change.event_type, data, change.meta, occurred_on, countries)
    # The log checks the version decided on: a change since is a 412 with If-Match.
    appended = await runtime.appends.append(stream_name(state.id), state.version, [event])
    if appended.duplicate:  # a concurrent retry with the same key got there first
        replayed, _ = await load(runtime, state.id, appended.versions[-1])
        return incident_response(replayed, appended.positions[-1])
    after = TRANSITIONS[change.event_type](state, data, appended.versions[-1], appended.recorded_at)
    return incident_response(after, appended.positions[-1])


def _stale(expected: frozenset[int], actual: int) -> PreconditionFailed:
    named = ", ".join(f'"{version}"' for version in sorted(expected)) or "no strong ETag"
    return PreconditionFailed(
        f"If-Match named {named}; the incident is at version {actual}",
        current_version=actual,
    )


class Lifecycle(msgspec.Struct, frozen=True):
    """A command on an existing incident: its path, body, event and decision."""

    name: str
    path: str
    summary: str
    description: str
    body: type[Any]
    event_type: str
    decide: Callable[[IncidentState, Any], msgspec.Struct | None]


def lifecycle_route(command: Lifecycle) -> HTTPRouteHandler:
    """POST /v1/incidents/{id}/<path>: decide `command` on the incident, then append."""
    decoder = msgspec.json.Decoder(command.body)

    async def handler(
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        incident_id: FromPath[UUID],
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[IncidentView]:
        body = await json_body(request, decoder)
        meta = metadata(request, idempotency_key)
        if idempotency_key is not None:
            meta = msgspec.structs.replace(meta, request_hash=await request_hash(request))
        return await apply_change(
            runtime,
            Change(
                incident_id,
                command.event_type,
                lambda state: command.decide(state, body),
                meta,
                if_match_versions(if_match),
            ),
        )

    handler.__name__ = handler.__qualname__ = command.name
    return post(
        f"/v1/incidents/{{incident_id:uuid}}/{command.path}",
        status_code=200,
        tags=["incidents"],
        summary=command.summary,
        description=command.description,
        opt={"body": command.body, "problems": WRITE_PROBLEMS, "scope": "write"},
    )(handler)


LIFECYCLE = (
    Lifecycle(
        "correct_incident",
        "corrections",
        "Correct an incident",
        "Append a correction; the corrected incident is validated as a whole.",
        Correction,
        "incident.corrected",
        decide_correction,
    ),
    Lifecycle(
        "retract_incident",
        "retraction",
        "Retract an incident",
        "Retract an incident: it stays readable, as `retracted`, and leaves every standing.",
        Retraction,
        "incident.retracted",
        decide_retraction,
    ),
    Lifecycle(
        "add_source",
        "sources",
        "Add a source to an incident",
        "Cite another source; citing one the incident already has changes nothing.",
        Source,
        "incident.source_added",
        decide_source,
    ),
)


@get(
    "/v1/incidents/{incident_id:uuid}",
    tags=["incidents"],
    summary="Read an incident",
    opt={"problems": (404,), "scope": "read"},
)
async def read_incident(
    runtime: NamedDependency[Runtime],
    incident_id: FromPath[UUID],
    if_none_match: IfNoneMatch = None,
) -> Response[IncidentView | None]:
    """The incident's current view; 304 when If-None-Match names its ETag."""
    state, position = await load(runtime, incident_id)
    if none_match(if_none_match, etag(state.version)):
        headers = {"ETag": etag(state.version), POSITION: str(position)}
        return Response(None, status_code=304, headers=headers)
    return incident_response(state, position)  # type: ignore[return-value]


class IncidentEvents(msgspec.Struct, frozen=True):
    """An incident's events, oldest first."""

    items: list[RecordedEvent]


@get(
    "/v1/incidents/{incident_id:uuid}/events",
    tags=["incidents"],
    summary="Read an incident's events",
    opt={"problems": (404,), "scope": "read"},
)
async def incident_events(
    runtime: NamedDependency[Runtime], incident_id: FromPath[UUID]
) -> Response[IncidentEvents]:
    """Every event of the incident's stream, oldest first."""
    events = await load_events(runtime, incident_id)
    return Response(IncidentEvents(items=events), headers={POSITION: str(events[-1].position)})


class IncidentPage(msgspec.Struct, frozen=True):
    """A page of incidents, newest first; `next_cursor` is null on the last page."""

    items: list[IncidentView]
    next_cursor: str | None


Kind = Literal["expulsion", "sanctions_round", "territorial_control"]


_cursor_decoder = msgspec.json.Decoder(Cursor)


def _country(value: str | None) -> str | None:
    return None if value is None else actor_param(value, "country")


@get(
    "/v1/incidents",
    tags=["incidents"],
    summary="List incidents",
    opt={"problems": (422, 503), "scope": "read"},
)
async def list_incidents(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    country: Annotated[str | None, QueryParameter(min_length=2, max_length=4)] = None,
    kind: FromQuery[Kind | None] = None,
    since: FromQuery[date | None] = None,
    until: FromQuery[date | None] = None,
    status: FromQuery[Status | None] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    min_position: MinPosition = None,
) -> Response[IncidentPage]:
    """Incidents newest first (by occurred_on), filtered; page on with `cursor`."""
    filters = IncidentFilter(_country(country), kind, since, until, status)
    after = decode_cursor(cursor, _cursor_decoder)
    await await_position(runtime, min_position)
    async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        position = await checkpoint(conn)
        states, next_cursor = await read_incidents(conn, filters, after, limit)
    following = encode_cursor(next_cursor) if next_cursor else None
    page = IncidentPage([incident_view(state) for state in states], following)
    headers = {POSITION: str(position), **(next_link(request, following) if following else {})}
    return Response(page, headers=headers)


ROUTES = [
    list_incidents,
    report_incident,
    *(lifecycle_route(command) for command in LIFECYCLE),
    read_incident,
    incident_events,
]
