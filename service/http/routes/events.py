"""The log, read by position."""

from typing import Annotated
from urllib.parse import urlencode

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter

from service.http.actor_params import actor_params
from service.http.consistency import LoggedPosition, logged
from service.http.headers import POSITION
from service.http.problems import FieldError, InvalidInput
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.incidents.catalogue import EVENT_TYPES
from service.log.envelope import RecordedEvent
from service.log.store import LogFilter, head_position, read_all


class EventPage(msgspec.Struct, frozen=True):
    """A page of the log; `last_position` is the head of the whole log when it was read."""

    items: list[RecordedEvent]
    last_position: int
    next: str


def log_filter(types: list[str], countries: list[str]) -> LogFilter:
    """The filter the query names; 422 for unknown types or actor codes."""
    errors = [
        FieldError("type", f"{name!r} is not an event type")
        for name in types
        if name not in EVENT_TYPES
    ]
    codes, wrong = actor_params(countries, "country")
    errors += wrong
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return LogFilter(types=tuple(types), countries=tuple(codes))


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@get(
    "/v1/events",
    tags=["log"],
    summary="Read the log after a position",
    opt=route_meta(problems=(422,), scope="read"),
)
async def list_events(
    pool: NamedDependency[Pool],
    after: Annotated[
        int, Parameter(ge=0, le=2**62, description="Return events after this position")
    ] = 0,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    event_type: Annotated[
        list[str] | None,
        QueryParameter(
            name="type", max_items=20, description="Event types, repeated or comma-separated"
        ),
    ] = None,
    country: Annotated[
        list[str] | None,
        Parameter(max_items=20, description="Actor codes, repeated or comma-separated"),
    ] = None,
    min_position: LoggedPosition = None,
) -> Response[EventPage]:
    """Events after `after` in position order; page on with `next`."""
    types, countries = _split(event_type), _split(country)
    filters = log_filter(types, countries)
    await logged(pool, min_position)
    async with pool.acquire() as conn:
        items = await read_all(conn, after, limit, filters)
        head = await head_position(conn)
    query = {"after": items[-1].position if items else after, "limit": limit}
    next_link = "/v1/events?" + urlencode(
        [
            *query.items(),
            *(("type", t) for t in types),
            *(("country", c) for c in filters.countries),
        ]
    )
    page = EventPage(items=items, last_position=head, next=next_link)
    return Response(page, headers={POSITION: str(head)})


ROUTES = [list_events]
