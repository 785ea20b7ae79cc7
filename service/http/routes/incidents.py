"""Incidents: report, correct, retract, cite, and read one incident."""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal, cast
from uuid import UUID, uuid4

import asyncpg
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter

from service.http import csv_tables, request_ids
from service.http.actor_params import actor_param
from service.http.bodies import json_body
from service.http.consistency import LogMinPosition, MinPosition, ReadModels
from service.http.headers import POSITION, etag, if_match_versions, none_match
from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.representations import CSV, chosen
from service.http.route_meta import route_meta
from service.incidents import handlers
from service.incidents.catalogue import Report, Source
from service.incidents.domain import Correction, IncidentState, Retraction, Status
from service.incidents.handlers import IncidentAt
from service.incidents.views import IncidentView, incident_view
from service.log.envelope import Metadata, RecordedEvent
from service.log.group_commit import GroupCommit
from service.projections.incident_list import Cursor, IncidentFilter
from service.projections.incident_list import list_incidents as read_incidents
from service.projections.projector import checkpoint

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


@post(
    "/v1/incidents",
    status_code=201,
    tags=["incidents"],
    summary="Report an incident",
    operation_id="reportIncident",
    opt=route_meta(
        body=Report,
        problems=(400, 401, 403, 409, 413, 415, 422),
        scope="write",
        headers=("ETag", "Location", "Legation-Position"),
    ),
)
async def report_incident(
    request: Request[Any, Any, Any],
    appends: NamedDependency[GroupCommit],
    idempotency_key: IdempotencyKey = None,
) -> Response[IncidentView]:
    """Append a new incident; a retry (same Idempotency-Key or id, same body) changes nothing."""
    report = await json_body(request, report_decoder)
    meta = metadata(request, idempotency_key)
    done = await handlers.report(appends.pool, appends, report, meta)
    return incident_response(done.state, done.position, 201, location=True)


async def request_hash(request: Request[Any, Any, Any]) -> str:
    """What a request asked for: method, path and body (to recognise a reused key)."""
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()[:32]


Command = Callable[
    ["asyncpg.Pool[Any]", GroupCommit, UUID, Any, Metadata, frozenset[int] | None],
    Awaitable[IncidentAt],
]


class Lifecycle(msgspec.Struct, frozen=True):
    """A command on an existing incident: its path, body and handler."""

    name: str
    operation_id: str
    path: str
    summary: str
    description: str
    body: type[Any]
    handle: Command


def lifecycle_route(command: Lifecycle) -> HTTPRouteHandler:
    """POST /v1/incidents/{id}/<path>: decide `command` on the incident, then append."""
    decoder = msgspec.json.Decoder(command.body)

    async def handler(
        request: Request[Any, Any, Any],
        appends: NamedDependency[GroupCommit],
        incident_id: FromPath[UUID],
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[IncidentView]:
        body = await json_body(request, decoder)
        meta = metadata(request, idempotency_key)
        if idempotency_key is not None:
            meta = msgspec.structs.replace(meta, request_hash=await request_hash(request))
        expected = if_match_versions(if_match)
        done = await command.handle(appends.pool, appends, incident_id, body, meta, expected)
        return incident_response(done.state, done.position)

    handler.__name__ = handler.__qualname__ = command.name
    return post(
        f"/v1/incidents/{{incident_id:uuid}}/{command.path}",
        status_code=200,
        tags=["incidents"],
        summary=command.summary,
        description=command.description,
        operation_id=command.operation_id,
        opt=route_meta(
            body=command.body,
            problems=WRITE_PROBLEMS,
            scope="write",
            headers=("ETag", "Legation-Position"),
        ),
    )(handler)


LIFECYCLE = (
    Lifecycle(
        "correct_incident",
        "correctIncident",
        "corrections",
        "Correct an incident",
        "Append a correction; the corrected incident is validated as a whole.",
        Correction,
        handlers.correct,
    ),
    Lifecycle(
        "retract_incident",
        "retractIncident",
        "retraction",
        "Retract an incident",
        "Retract an incident: it stays readable, as `retracted`, and leaves every standing.",
        Retraction,
        handlers.retract,
    ),
    Lifecycle(
        "add_source",
        "addIncidentSource",
        "sources",
        "Add a source to an incident",
        "Cite another source; citing one the incident already has changes nothing.",
        Source,
        handlers.add_source,
    ),
)


@get(
    "/v1/incidents/{incident_id:uuid}",
    tags=["incidents"],
    summary="Read an incident",
    operation_id="getIncident",
    opt=route_meta(problems=(404, 422), scope="read", headers=("ETag", "Legation-Position")),
)
async def read_incident(
    read_models: NamedDependency[ReadModels],
    incident_id: FromPath[UUID],
    if_none_match: IfNoneMatch = None,
    min_position: LogMinPosition = None,
) -> Response[IncidentView | None]:
    """The incident's current view (folded from the log); 304 when If-None-Match names its
    ETag."""
    await read_models.reach_log(min_position)
    current = await handlers.load(read_models.pool, incident_id)
    state, position = current.state, current.position
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
    operation_id="listIncidentEvents",
    opt=route_meta(problems=(404, 422), scope="read", headers=("Legation-Position",)),
)
async def incident_events(
    read_models: NamedDependency[ReadModels],
    incident_id: FromPath[UUID],
    min_position: LogMinPosition = None,
) -> Response[IncidentEvents]:
    """Every event of the incident's stream, oldest first."""
    await read_models.reach_log(min_position)
    events = await handlers.load_events(read_models.pool, incident_id)
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
    operation_id="listIncidents",
    opt=route_meta(
        problems=(422, 503), scope="read", headers=("Legation-Position", "Link"), csv=True
    ),
)
async def list_incidents(
    request: Request[Any, Any, Any],
    read_models: NamedDependency[ReadModels],
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
    await read_models.reach(min_position)
    async with read_models.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        position = await checkpoint(conn)
        states, next_cursor = await read_incidents(conn, filters, after, limit)
    following = encode_cursor(next_cursor) if next_cursor else None
    page = IncidentPage([incident_view(state) for state in states], following)
    headers = {POSITION: str(position), "Vary": "Accept"}
    headers |= next_link(request, following) if following else {}
    if chosen(request.scope) == "csv":
        table = Response(csv_tables.encode(page), media_type=CSV, headers=headers)
        return cast(Response[IncidentPage], table)
    return Response(page, headers=headers)


ROUTES = [
    list_incidents,
    report_incident,
    *(lifecycle_route(command) for command in LIFECYCLE),
    read_incident,
    incident_events,
]
