"""Standings: countries, bilateral ledgers, timelines and territories, at any log position."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.http.actor_params import actor_param
from service.http.paging import decode_cursor
from service.http.problems import FieldError, InvalidInput
from service.http.reading import READ, READ_PAGE, Reading
from service.http.route_meta import route_meta
from service.http.routes import standings_pages as pages
from service.http.routes.standings_pages import DATED, NAMED
from service.incidents.actors import actor_code, country_code, region_code
from service.incidents.blocs import BLOCS, bloc
from service.projections.standings_views import (
    Bilateral,
    CountryList,
    Relations,
    SortField,
    Standing,
    Territories,
    Timeline,
)

# remember: service/http/edge.py answers a repeated live URL from memory at the same position.
STANDING = route_meta(
    problems=(422, 503),
    scope="read",
    remember=True,
    headers=("ETag", "Legation-Position", "Link", "Memento-Datetime"),
)
# The lists API.md offers as CSV too (Accept: text/csv).
TABLES = route_meta(
    problems=(422, 503),
    scope="read",
    remember=True,
    headers=("ETag", "Legation-Position", "Link", "Memento-Datetime"),
    csv=True,
)
Members = Annotated[
    bool,
    QueryParameter(
        description="With a bloc's code (EU, NATO): count its side, the bloc and every actor "
        "that was a member on each incident's date, as one; incidents between two of them "
        "are left out. Ledger rows still name the parties as the incident does."
    ),
]


def side_of(code: str, members: bool) -> str | None:
    """The bloc whose side is counted (None: the actor alone); 422 for a non-bloc code."""
    if not members:
        return None
    if bloc(code) is None:
        message = f"counts a bloc's side: the code must be one of {', '.join(sorted(BLOCS))}"
        raise InvalidInput(f"members: {message}", errors=[FieldError("members", message)])
    return code


# The OpenAPI document lists parameters in signature order, a dependency's where it
# stands: `reading` follows each route's own parameters (keyword-only after defaults).


@get(
    "/v1/countries",
    tags=["standings"],
    summary="Every actor's standing",
    operation_id="listCountryStandings",
    opt=TABLES,
    dependencies=READ_PAGE,
)
async def list_countries(
    sort: Annotated[
        SortField | None, QueryParameter(description="Numeric field, descending")
    ] = None,
    *,
    reading: NamedDependency[Reading],
) -> Response[CountryList]:
    """Every actor that appears in an active incident; sorted by `sort` (descending) or code."""
    after = decode_cursor(reading.cursor, NAMED)
    page = partial(pages.countries, sort=sort, after=after, limit=reading.limit)
    key = ("countries", sort, reading.limit, reading.cursor)
    return await reading.answer(key, page, after)


@get(
    "/v1/countries/{code:str}",
    tags=["standings"],
    summary="An actor's standing",
    operation_id="getCountryStanding",
    opt=STANDING,
    dependencies=READ,
)
async def read_country(
    code: FromPath[str], members: Members = False, *, reading: NamedDependency[Reading]
) -> Response[Standing]:
    """Expulsions, sanctions and territory of one actor; zeros for a known code without any.

    With `members=true` and a bloc's code, its side: see Members."""
    actor = actor_param(code, "code")
    page = partial(pages.country, code=actor)
    return await reading.answer(("country", actor), page, side=side_of(actor, members))


@get(
    "/v1/countries/{code:str}/relations",
    tags=["standings"],
    summary="An actor's ledger with each counterpart",
    operation_id="listCountryRelations",
    opt=STANDING,
    dependencies=READ_PAGE,
)
async def read_relations(
    code: FromPath[str], members: Members = False, *, reading: NamedDependency[Reading]
) -> Response[Relations]:
    """One row per counterpart (by code): diplomats expelled each way, sanctions, incidents."""
    actor = actor_param(code, "code")
    after = decode_cursor(reading.cursor, NAMED)
    page = partial(pages.relations, code=actor, after=after, limit=reading.limit)
    key = ("relations", actor, reading.limit, reading.cursor)
    return await reading.answer(key, page, after, side_of(actor, members))


@get(
    "/v1/relations/{code:str}/{counterpart:str}",
    tags=["standings"],
    summary="The ledger between two actors",
    operation_id="getRelation",
    opt=STANDING,
    dependencies=READ_PAGE,
)
async def read_bilateral(
    code: FromPath[str],
    counterpart: FromPath[str],
    members: Members = False,
    *,
    reading: NamedDependency[Reading],
) -> Response[Bilateral]:
    """The ledger row and a page of the incidents between the two, oldest first."""
    a, b = actor_param(code, "code"), actor_param(counterpart, "counterpart")
    after = decode_cursor(reading.cursor, DATED)
    page = partial(pages.bilateral, code=a, counterpart=b, after=after, limit=reading.limit)
    key = ("bilateral", a, b, reading.limit, reading.cursor)
    return await reading.answer(key, page, after, side_of(a, members))


@get(
    "/v1/countries/{code:str}/timeline",
    tags=["standings"],
    summary="An actor's incidents, newest first",
    operation_id="getCountryTimeline",
    opt=TABLES,
    dependencies=READ_PAGE,
)
async def read_timeline(
    code: FromPath[str], reading: NamedDependency[Reading]
) -> Response[Timeline]:
    """A page of the active incidents the actor takes part in, with its role there."""
    actor = actor_param(code, "code")
    after = decode_cursor(reading.cursor, DATED)
    page = partial(pages.timeline, code=actor, after=after, limit=reading.limit)
    key = ("timeline", actor, reading.limit, reading.cursor)
    return await reading.answer(key, page, after)


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


@get(
    "/v1/territories",
    tags=["standings"],
    summary="Places and who holds them",
    operation_id="listTerritories",
    opt=TABLES,
    dependencies=READ_PAGE,
)
async def list_territories(
    country: Annotated[str | None, QueryParameter(max_length=3)] = None,
    region: Annotated[str | None, QueryParameter(max_length=6)] = None,
    controller: Annotated[str | None, QueryParameter(max_length=9)] = None,
    *,
    reading: NamedDependency[Reading],
) -> Response[Territories]:
    """Each place's latest controller, since when, and how many active reports it has."""
    filters = (
        _filter(country, country_code, "country"),
        _filter(region, region_code, "region"),
        _filter(controller, _controller, "controller"),
    )
    after = decode_cursor(reading.cursor, NAMED)
    page = partial(pages.territories, filters=filters, after=after, limit=reading.limit)
    key = ("territories", filters, reading.limit, reading.cursor)
    return await reading.answer(key, page, after)


ROUTES = [
    list_countries,
    read_country,
    read_relations,
    read_bilateral,
    read_timeline,
    list_territories,
]
