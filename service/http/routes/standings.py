"""Standings: countries, bilateral ledgers, timelines and territories, at any log position."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast
from uuid import UUID

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, QueryParameter

from service.http.consistency import MinPosition, await_position
from service.http.headers import POSITION, none_match
from service.http.paging import (
    DEFAULT_LIMIT,
    CursorParam,
    Limit,
    decode_cursor,
    encode_cursor,
    next_link,
)
from service.http.problems import FieldError, InvalidInput
from service.http.route_meta import route_meta
from service.http.runtime import Runtime
from service.incidents.actors import actor_code, actor_name, country_code, region_code
from service.incidents.catalogue import Place
from service.projections import standings as query
from service.projections.answer_cache import Cached, cached
from service.projections.standings import At, Page

if TYPE_CHECKING:
    from service.log.store import Connection

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_place_decoder = msgspec.json.Decoder(Place)
# remember: service/http/edge.py answers a repeated live URL from memory at the same position.
PROBLEMS = route_meta(problems=(422, 503), scope="read", remember=True)

AsOf = Annotated[
    date | None,
    QueryParameter(name="as_of", description="Count only incidents that occurred by this date"),
]
KnownAt = Annotated[
    int | None,
    QueryParameter(
        name="known_at",
        ge=0,
        le=2**62,
        description="Count only what the log held at this position (corrections after it not "
        "yet applied); waits like min_position when the read models are behind it, and is a "
        "422 beyond the log's head",
    ),
]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=1024)]


class Expulsions(msgspec.Struct, frozen=True):
    """Diplomats an actor expelled and had expelled."""

    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    balance: int
    incidents_initiated: int
    incidents_targeted: int


class LatestSanction(msgspec.Struct, frozen=True):
    """The latest sanctions round an actor received."""

    incident: UUID
    imposing: str
    round: int | None
    occurred_on: date


class Sanctions(msgspec.Struct, frozen=True):
    """Sanctions rounds an actor imposed and received."""

    rounds_imposed: int
    rounds_received: int
    latest_received: LatestSanction | None


class Territory(msgspec.Struct, frozen=True):
    """Places an actor holds, gained and lost."""

    places_controlled: int
    places_gained: int
    places_lost: int


class Standing(msgspec.Struct, frozen=True):
    """An actor's standing as of a log position (and date)."""

    code: str
    name: str
    expulsions: Expulsions
    sanctions: Sanctions
    territory: Territory
    last_incident_on: date | None
    position: int


class CountryList(msgspec.Struct, frozen=True):
    """Every actor of an active incident, with its standing."""

    items: list[Standing]
    position: int
    next_cursor: str | None = None


class Relation(msgspec.Struct, frozen=True):
    """The tit-for-tat ledger between an actor and one counterpart."""

    counterpart: str
    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    sanctions_rounds_imposed: int
    sanctions_rounds_received: int
    incidents: int
    last_incident_on: date | None


class Relations(msgspec.Struct, frozen=True):
    """An actor's ledger with every counterpart."""

    code: str
    items: list[Relation]
    position: int
    next_cursor: str | None = None


class LedgerIncident(msgspec.Struct, frozen=True):
    """One incident between two actors (initiator acted on recipient)."""

    id: UUID
    kind: str
    occurred_on: date
    initiator: str
    recipient: str | None
    count: int | None
    round: int | None
    place: Place | None
    responds_to: list[UUID]
    summary: str | None


class Bilateral(msgspec.Struct, frozen=True):
    """The ledger between `code` and `counterpart`, with their incidents oldest first."""

    code: str
    counterpart: str
    relation: Relation
    incidents: list[LedgerIncident]
    position: int
    next_cursor: str | None = None  # of `incidents`


class TimelineItem(msgspec.Struct, frozen=True):
    """An incident an actor takes part in, with its role there."""

    id: UUID
    kind: str
    occurred_on: date
    role: str
    initiator: str
    recipient: str | None
    count: int | None
    round: int | None
    place: Place | None
    responds_to: list[UUID]
    summary: str | None


class Timeline(msgspec.Struct, frozen=True):
    """An actor's incidents, newest first."""

    code: str
    items: list[TimelineItem]
    position: int
    next_cursor: str | None = None


class TerritoryItem(msgspec.Struct, frozen=True):
    """A place, who holds it since when, and the reports about it."""

    place: Place
    controller: str
    since: date | None
    reports: int
    last_reported_on: date
    incidents: list[UUID]


class Territories(msgspec.Struct, frozen=True):
    """Places and their controllers."""

    items: list[TerritoryItem]
    position: int
    next_cursor: str | None = None


SortField = Literal[
    "expelled_foreign_diplomats",
    "own_diplomats_expelled",
    "balance",
    "incidents_initiated",
    "incidents_targeted",
    "rounds_imposed",
    "rounds_received",
    "places_controlled",
    "places_gained",
    "places_lost",
]


def known_actor(value: str, field: str = "code") -> str:
    """The canonical actor code; 422 naming `field` otherwise."""
    code = actor_code(value)
    if code is None:
        message = "is not an ISO 3166-1 code, EU, NATO or UN"
        raise InvalidInput(f"{field}: {message}", errors=[FieldError(field, message)])
    return code


Position = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class DatedCursor(msgspec.Struct, frozen=True, array_like=True):
    """Where a page of incidents ended: its position, the last one's date, report and id."""

    position: Position
    occurred_on: date
    reported_position: int
    id: UUID


class NamedCursor(msgspec.Struct, frozen=True, array_like=True):
    """Where a page ended: its position and the last item's sort key (text, then a code)."""

    position: Position
    value: int | str
    name: str = ""
    key: str = ""


_dated = msgspec.json.Decoder(DatedCursor)
_named = msgspec.json.Decoder(NamedCursor)


async def resolve_at(
    runtime: Runtime,
    as_of: date | None,
    known_at: int | None,
    min_position: int | None,
    cursor: DatedCursor | NamedCursor | None = None,
) -> At:
    """The position (and date) to answer at, once the read models have reached it.

    A page after the first is read at its first page's position (the cursor holds
    it), so paging on while the log grows neither skips nor repeats items.
    """
    if known_at is not None:
        await await_position(runtime, min_position, known_at=known_at)
    elif cursor is not None:
        known_at = cursor.position
        await await_position(runtime, min_position, cursor=known_at)
    else:
        await await_position(runtime, min_position)
    position = known_at if known_at is not None else runtime.projector.position
    return At(position, as_of)


async def answer(
    runtime: Runtime,
    key: Hashable,
    at: At,
    request: Request[Any, Any, Any],
    if_none_match: str | None,
    compute: Callable[[Connection, At], Awaitable[tuple[T, str | None]]],
) -> Response[T]:
    """The standing for `key` at `at`, from memory when it was computed before.

    `compute` gives the answer and the cursor of the page after it (None: none).
    """
    pinned = "known_at" in request.query_params or "cursor" in request.query_params
    entry = runtime.cache.get((key, at))
    if not isinstance(entry, Cached):
        generation = runtime.cache.generation
        async with runtime.pool.acquire() as conn:
            body, following = await compute(conn, at)
            entry = cached(_encoder.encode(body), following)
        live_at = None if pinned else at.position
        runtime.cache.put((key, at), entry, live_at, generation)
    headers = {"ETag": entry.etag, POSITION: str(at.position)}
    if entry.next_cursor is not None:
        headers |= next_link(request, entry.next_cursor)
    if none_match(if_none_match, entry.etag):
        return cast(Response[T], Response(None, status_code=304, headers=headers))
    return cast(Response[T], Response(entry.body, media_type="application/json", headers=headers))


def _dated_after(cursor: DatedCursor | None) -> tuple[Any, ...] | None:
    return None if cursor is None else (cursor.occurred_on, cursor.reported_position, cursor.id)


def _dated_next(rows: list[dict[str, Any]], limit: int, position: int) -> str | None:
    """The cursor after the last of `limit` rows, when a row more was read."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(
        DatedCursor(position, last["occurred_on"], last["reported_position"], last["id"])
    )


def _standing(row: dict[str, Any] | None, code: str, position: int) -> Standing:
    row = row or {}
    sent, received = row.get("expelled_foreign_diplomats", 0), row.get("own_diplomats_expelled", 0)
    latest = row.get("latest_received")
    return Standing(
        code=code,
        name=actor_name(code),
        expulsions=Expulsions(
            sent,
            received,
            sent - received,
            row.get("incidents_initiated", 0),
            row.get("incidents_targeted", 0),
        ),
        sanctions=Sanctions(
            row.get("rounds_imposed", 0),
            row.get("rounds_received", 0),
            msgspec.json.decode(latest, type=LatestSanction) if latest else None,
        ),
        territory=Territory(
            row.get("places_controlled", 0), row.get("places_gained", 0), row.get("places_lost", 0)
        ),
        last_incident_on=row.get("last_incident_on"),
        position=position,
    )


def _sort_value(standing: Standing, field: str) -> int:
    for group in (standing.expulsions, standing.sanctions, standing.territory):
        if field in group.__struct_fields__:
            value: int = getattr(group, field)
            return value
    raise ValueError(field)


def _country_key(standing: Standing, sort: str | None) -> tuple[int, str]:
    """The order of the country list: by `sort` descending, then by code."""
    return (-_sort_value(standing, sort) if sort else 0, standing.code)


@get("/v1/countries", tags=["standings"], summary="Every actor's standing", opt=PROBLEMS)
async def list_countries(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    sort: Annotated[
        SortField | None, QueryParameter(description="Numeric field, descending")
    ] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[CountryList]:
    """Every actor that appears in an active incident; sorted by `sort` (descending) or code."""
    after = decode_cursor(cursor, _named)
    at = await resolve_at(runtime, as_of, known_at, min_position, after)

    async def compute(conn: Connection, at: At) -> tuple[CountryList, str | None]:
        # At most a few hundred actors: sorted and paged here rather than in SQL.
        rows = await query.standings(conn, at)
        items = sorted(
            (_standing(row, row["code"], at.position) for row in rows),
            key=lambda s: _country_key(s, sort),
        )
        if after is not None:
            last = (int(after.value), after.name)
            items = [s for s in items if _country_key(s, sort) > last]
        following = None
        if len(items) > limit:
            value, code = _country_key(items[limit - 1], sort)
            following = encode_cursor(NamedCursor(at.position, value, code))
        return CountryList(items[:limit], at.position, following), following

    key = ("countries", sort, limit, cursor)
    return await answer(runtime, key, at, request, if_none_match, compute)


@get("/v1/countries/{code:str}", tags=["standings"], summary="An actor's standing", opt=PROBLEMS)
async def read_country(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    code: FromPath[str],
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Standing]:
    """Expulsions, sanctions and territory of one actor; zeros for a known code without any."""
    actor = known_actor(code)
    at = await resolve_at(runtime, as_of, known_at, min_position)

    async def compute(conn: Connection, at: At) -> tuple[Standing, None]:
        rows = await query.standings(conn, at, actor)
        return _standing(rows[0] if rows else None, actor, at.position), None

    return await answer(runtime, ("country", actor), at, request, if_none_match, compute)


def _relation(row: dict[str, Any]) -> Relation:
    return msgspec.convert(row, Relation)


def _zero_relation(counterpart: str) -> Relation:
    return Relation(counterpart, 0, 0, 0, 0, 0, None)


@get(
    "/v1/countries/{code:str}/relations",
    tags=["standings"],
    summary="An actor's ledger with each counterpart",
    opt=PROBLEMS,
)
async def read_relations(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    code: FromPath[str],
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Relations]:
    """One row per counterpart (by code): diplomats expelled each way, sanctions, incidents."""
    actor = known_actor(code)
    after = decode_cursor(cursor, _named)
    at = await resolve_at(runtime, as_of, known_at, min_position, after)

    async def compute(conn: Connection, at: At) -> tuple[Relations, str | None]:
        page = Page(None if after is None else (str(after.value),), limit + 1)
        rows = await query.relations(conn, at, actor, page=page)
        following = None
        if len(rows) > limit:
            following = encode_cursor(NamedCursor(at.position, rows[limit - 1]["counterpart"]))
        items = [_relation(row) for row in rows[:limit]]
        return Relations(actor, items, at.position, following), following

    key = ("relations", actor, limit, cursor)
    return await answer(runtime, key, at, request, if_none_match, compute)


def _incident_row(row: dict[str, Any], item: type[T]) -> T:
    place = row.get("place")
    return msgspec.convert(
        {**row, "place": _place_decoder.decode(place) if place else None},
        item,
        from_attributes=False,
    )


@get(
    "/v1/relations/{code:str}/{counterpart:str}",
    tags=["standings"],
    summary="The ledger between two actors",
    opt=PROBLEMS,
)
async def read_bilateral(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    code: FromPath[str],
    counterpart: FromPath[str],
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Bilateral]:
    """The ledger row and a page of the incidents between the two, oldest first."""
    a, b = known_actor(code), known_actor(counterpart, "counterpart")
    after = decode_cursor(cursor, _dated)
    at = await resolve_at(runtime, as_of, known_at, min_position, after)

    async def compute(conn: Connection, at: At) -> tuple[Bilateral, str | None]:
        rows = await query.relations(conn, at, a, b)
        relation = _relation(rows[0]) if rows else _zero_relation(b)
        found = await query.between(conn, at, a, b, Page(_dated_after(after), limit + 1))
        following = _dated_next(found, limit, at.position)
        incidents = [_incident_row(r, LedgerIncident) for r in found[:limit]]
        return Bilateral(a, b, relation, incidents, at.position, following), following

    key = ("bilateral", a, b, limit, cursor)
    return await answer(runtime, key, at, request, if_none_match, compute)


@get(
    "/v1/countries/{code:str}/timeline",
    tags=["standings"],
    summary="An actor's incidents, newest first",
    opt=PROBLEMS,
)
async def read_timeline(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    code: FromPath[str],
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Timeline]:
    """A page of the active incidents the actor takes part in, with its role there."""
    actor = known_actor(code)
    after = decode_cursor(cursor, _dated)
    at = await resolve_at(runtime, as_of, known_at, min_position, after)

    async def compute(conn: Connection, at: At) -> tuple[Timeline, str | None]:
        rows = await query.timeline(conn, at, actor, Page(_dated_after(after), limit + 1))
        following = _dated_next(rows, limit, at.position)
        items = [_incident_row(r, TimelineItem) for r in rows[:limit]]
        return Timeline(actor, items, at.position, following), following

    key = ("timeline", actor, limit, cursor)
    return await answer(runtime, key, at, request, if_none_match, compute)


def _filter(value: str | None, check: Callable[[str], str | None], field: str) -> str | None:
    if value is None:
        return None
    canonical = check(value)
    if canonical is None:
        message = f"is not a known {field}"
        raise InvalidInput(f"{field}: {message}", errors=[FieldError(field, message)])
    return canonical


def _controller(value: str) -> str | None:
    return "contested" if value.lower() == "contested" else actor_code(value)


@get("/v1/territories", tags=["standings"], summary="Places and who holds them", opt=PROBLEMS)
async def list_territories(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    country: Annotated[str | None, QueryParameter(max_length=3)] = None,
    region: Annotated[str | None, QueryParameter(max_length=6)] = None,
    controller: Annotated[str | None, QueryParameter(max_length=9)] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Territories]:
    """Each place's latest controller, since when, and how many active reports it has."""
    filters = (
        _filter(country, country_code, "country"),
        _filter(region, region_code, "region"),
        _filter(controller, _controller, "controller"),
    )
    after = decode_cursor(cursor, _named)
    at = await resolve_at(runtime, as_of, known_at, min_position, after)

    async def compute(conn: Connection, at: At) -> tuple[Territories, str | None]:
        place = None if after is None else (str(after.value), after.name, after.key)
        page = Page(place, limit + 1)
        rows = await query.territories(conn, at, filters, page)
        following = None
        if len(rows) > limit:
            last = rows[limit - 1]
            held = _place_decoder.decode(last["place"])
            following = encode_cursor(
                NamedCursor(at.position, held.country, held.name, last["place_key"])
            )
        items = [_incident_row(row, TerritoryItem) for row in rows[:limit]]
        return Territories(items, at.position, following), following

    key = ("territories", filters, limit, cursor)
    return await answer(runtime, key, at, request, if_none_match, compute)


ROUTES = [
    list_countries,
    read_country,
    read_relations,
    read_bilateral,
    read_timeline,
    list_territories,
]
