"""One page of each standings answer, and the cursor of the page after it.

A cursor holds the position its first page was read at: paging on while the log
grows neither skips nor repeats items.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec

from service.http.paging import encode_cursor
from service.incidents.catalogue import Place
from service.projections import standings as query
from service.projections.standings import At, Page
from service.projections.standings_views import (
    Bilateral,
    CountryList,
    LedgerIncident,
    Relations,
    Standing,
    Territories,
    TerritoryItem,
    Timeline,
    TimelineItem,
    incident_row,
    relation,
    standing,
    zero_relation,
)

if TYPE_CHECKING:
    from service.log.store import Connection

Position = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Filters = tuple[str | None, str | None, str | None]


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


DATED = msgspec.json.Decoder(DatedCursor)
NAMED = msgspec.json.Decoder(NamedCursor)
_place = msgspec.json.Decoder(Place)


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


def _sort_value(standing: Standing, field: str) -> int:
    for group in (standing.expulsions, standing.sanctions, standing.territory):
        if field in group.__struct_fields__:
            value: int = getattr(group, field)
            return value
    raise ValueError(field)


def _country_key(standing: Standing, sort: str | None) -> tuple[int, str]:
    """The order of the country list: by `sort` descending, then by code."""
    return (-_sort_value(standing, sort) if sort else 0, standing.code)


async def countries(
    conn: Connection, at: At, *, sort: str | None, after: NamedCursor | None, limit: int
) -> tuple[CountryList, str | None]:
    """Every actor's standing, sorted by `sort` (descending) or code."""
    # At most a few hundred actors: sorted and paged here rather than in SQL.
    rows = await query.standings(conn, at)
    items = sorted(
        (standing(row, row["code"], at.position) for row in rows),
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


async def country(conn: Connection, at: At, *, code: str) -> tuple[Standing, None]:
    """One actor's standing; zeros for a known code without any."""
    rows = await query.standings(conn, at, code)
    return standing(rows[0] if rows else None, code, at.position), None


async def relations(
    conn: Connection, at: At, *, code: str, after: NamedCursor | None, limit: int
) -> tuple[Relations, str | None]:
    """A page of an actor's ledgers, by counterpart."""
    page = Page(None if after is None else (str(after.value),), limit + 1)
    rows = await query.relations(conn, at, code, page=page)
    following = None
    if len(rows) > limit:
        following = encode_cursor(NamedCursor(at.position, rows[limit - 1]["counterpart"]))
    items = [relation(row) for row in rows[:limit]]
    return Relations(code, items, at.position, following), following


async def bilateral(
    conn: Connection, at: At, *, code: str, counterpart: str, after: DatedCursor | None, limit: int
) -> tuple[Bilateral, str | None]:
    """The ledger between two actors and a page of their incidents, oldest first."""
    rows = await query.relations(conn, at, code, counterpart)
    ledger = relation(rows[0]) if rows else zero_relation(counterpart)
    found = await query.between(conn, at, code, counterpart, Page(_dated_after(after), limit + 1))
    following = _dated_next(found, limit, at.position)
    incidents = [incident_row(r, LedgerIncident) for r in found[:limit]]
    return Bilateral(code, counterpart, ledger, incidents, at.position, following), following


async def timeline(
    conn: Connection, at: At, *, code: str, after: DatedCursor | None, limit: int
) -> tuple[Timeline, str | None]:
    """A page of an actor's incidents, newest first, with its role there."""
    rows = await query.timeline(conn, at, code, Page(_dated_after(after), limit + 1))
    following = _dated_next(rows, limit, at.position)
    items = [incident_row(r, TimelineItem) for r in rows[:limit]]
    return Timeline(code, items, at.position, following), following


async def territories(
    conn: Connection, at: At, *, filters: Filters, after: NamedCursor | None, limit: int
) -> tuple[Territories, str | None]:
    """A page of places with their controllers, by country, name and key."""
    place = None if after is None else (str(after.value), after.name, after.key)
    rows = await query.territories(conn, at, filters, Page(place, limit + 1))
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        held = _place.decode(last["place"])
        following = encode_cursor(
            NamedCursor(at.position, held.country, held.name, last["place_key"])
        )
    items = [incident_row(row, TerritoryItem) for row in rows[:limit]]
    return Territories(items, at.position, following), following
