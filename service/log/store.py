"""The event log on asyncpg: append, read_stream, read_all.

Ordering, idempotency and the version check live in the `append_events` SQL
function (migrations/versions/0001_event_log.py), so one round trip appends a
whole group of requests in one transaction under the log's ordering lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import asyncpg
import msgspec

from service.log.envelope import EVENT_COLUMNS, FoldedEvent, NewEvent, RecordedEvent, recorded

NOTIFY_CHANNEL = "legation_events"

if TYPE_CHECKING:
    Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]


# gc=False (here and below): immutable values that cannot form a cycle, made by
# the thousand per batch; left untracked they do not bring on full collections.
class AppendRequest(msgspec.Struct, frozen=True, gc=False):
    """Events for one stream, appended only if the stream is at `expected_version`.

    `expected_version` None accepts any version; 0 means the stream must not exist.
    """

    stream: str
    expected_version: int | None
    events: tuple[NewEvent, ...]


class Appended(msgspec.Struct, frozen=True, gc=False):
    """Where an append landed; `duplicate` when every event id was already stored."""

    stream: str
    positions: tuple[int, ...]
    versions: tuple[int, ...]
    recorded_at: datetime
    duplicate: bool


class AppendRefused(Exception):
    """Base of the reasons the log refuses one append (nothing of it is written)."""


class WrongExpectedVersion(AppendRefused):
    """The stream is not at the version the append expected."""

    def __init__(self, stream: str, expected: int | None, actual: int) -> None:
        super().__init__(f"{stream} is at version {actual}, the append expected {expected}")
        self.stream, self.expected, self.actual = stream, expected, actual


class EventIdReused(AppendRefused):
    """An event id of the append is already stored with other content."""

    def __init__(self, stream: str, actual: int) -> None:
        super().__init__(f"an event id appended to {stream} is already stored with other content")
        self.stream, self.actual = stream, actual


# One row per event: its request's outcome, the stream's version before the
# group, where a duplicate is stored, and the block appended events were
# numbered from (in request and event order). _outcomes unpacks the columns
# in this order.
APPEND_SQL = """
SELECT request, outcome, stream_version, found_position, found_version, found_at,
       first_position, appended_at
  FROM {function}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
SET_WISE = APPEND_SQL.format(function="append_events")
IN_TURN = APPEND_SQL.format(function="append_events_in_turn")
NEW_STREAMS = APPEND_SQL.format(function="append_new_streams")


def _columns(requests: Sequence[AppendRequest]) -> list[list[Any]]:
    """The group as the parallel arrays append_events takes, one element per event."""
    owners = [(index, request) for index, request in enumerate(requests) for _ in request.events]
    events = [event for request in requests for event in request.events]
    return [
        [index for index, _ in owners],
        [request.stream for _, request in owners],
        [request.expected_version for _, request in owners],
        [event.id for event in events],
        [event.type for event in events],
        [event.schema_version for event in events],
        [event.occurred_on for event in events],
        [",".join(event.countries) for event in events],
        [event.data for event in events],
        [event.metadata for event in events],
    ]


async def append_many(
    conn: Connection, requests: Sequence[AppendRequest]
) -> list[Appended | AppendRefused]:
    """Append each request in one transaction; a refusal fails only its own request."""
    # A group that touches one stream (or one event id) twice must be decided
    # request by request: the second must see what the first wrote.
    ids = [event.id for request in requests for event in request.events]
    streams = {request.stream for request in requests}
    if len(streams) < len(requests) or len(set(ids)) < len(ids):
        statement = IN_TURN
    elif ids and all(request.expected_version == 0 for request in requests):
        statement = NEW_STREAMS  # reports and batch lines: nothing to look up first
    else:
        statement = SET_WISE
    rows = await conn.fetch(statement, *_columns(requests))
    return _outcomes(requests, rows)


def _outcomes(
    requests: Sequence[AppendRequest], rows: list[asyncpg.Record]
) -> list[Appended | AppendRefused]:
    heads: dict[int, asyncpg.Record] = {}  # each request's first row carries its outcome
    stored: list[list[tuple[int, int]]] = [[] for _ in requests]
    taken: dict[int, int] = {}  # appended events numbered from each block so far
    for row in rows:
        request, outcome, version, found_position, found_version, _, first, _ = row
        heads.setdefault(request, row)
        if outcome == "appended":
            taken[first] = taken.get(first, -1) + 1
            stored[request].append((first + taken[first], version + len(stored[request]) + 1))
        elif outcome == "duplicate":
            stored[request].append((found_position, found_version))
    return [_outcome(request, heads[i], stored[i]) for i, request in enumerate(requests)]


def _outcome(
    request: AppendRequest, row: asyncpg.Record, stored: list[tuple[int, int]]
) -> Appended | AppendRefused:
    outcome: str = row["outcome"]
    version: int = row["stream_version"]
    if outcome == "stale":
        return WrongExpectedVersion(request.stream, request.expected_version, version)
    if outcome == "id_conflict":
        return EventIdReused(request.stream, version)
    duplicate = outcome == "duplicate"
    positions, versions = zip(*stored, strict=True) if stored else ((), ())
    return Appended(
        stream=request.stream,
        positions=positions,
        versions=versions,
        recorded_at=row["found_at"] if duplicate else row["appended_at"],
        duplicate=duplicate,
    )


async def append(
    conn: Connection, stream: str, expected_version: int | None, events: Sequence[NewEvent]
) -> Appended:
    """Append `events` to `stream`; raise WrongExpectedVersion or EventIdReused on refusal."""
    (result,) = await append_many(conn, [AppendRequest(stream, expected_version, tuple(events))])
    if isinstance(result, AppendRefused):
        raise result
    return result


def _recorded(rows: list[asyncpg.Record]) -> list[RecordedEvent]:
    return [recorded(row) for row in rows]


async def read_stream(
    conn: Connection, stream: str, up_to_version: int | None = None
) -> list[RecordedEvent]:
    """The stream's events, oldest first (up to `up_to_version` when given)."""
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream = $1 AND version <= $2 ORDER BY version",
        stream,
        up_to_version if up_to_version is not None else 2**31 - 1,
    )
    return _recorded(rows)


async def find_event(conn: Connection, event_id: UUID) -> RecordedEvent | None:
    """The event stored with this id, if any (an idempotent retry finds its first answer)."""
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = $1", event_id)
    return _recorded(rows)[0] if rows else None


class LogFilter(msgspec.Struct, frozen=True):
    """Which events read_all returns: any of `types`, touching any of `countries`."""

    types: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()


async def read_all(
    conn: Connection, after: int, limit: int, filters: LogFilter | None = None
) -> list[RecordedEvent]:
    """Up to `limit` events with position > `after`, in position order."""
    filters = filters or LogFilter()
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
             WHERE position > $1
               AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[]))
               AND (cardinality($4::text[]) = 0 OR countries && $4::text[])
             ORDER BY position LIMIT $2""",
        after,
        limit,
        list(filters.types),
        list(filters.countries),
    )
    return _recorded(rows)


# What the read models are made of (FoldedEvent): no id, schema version,
# occurred_on or metadata, which no read model holds; sending and decoding those
# took more than a third of a read.
FOLDED_READ: Final = """
SELECT position, stream, version, type, recorded_at, data
  FROM events WHERE position > $1 AND position <= $2 {streams} ORDER BY position LIMIT $3
"""
LAST_POSITION: Final = 2**63 - 1


async def read_folded(
    conn: Connection, after: int, limit: int, up_to: int = LAST_POSITION, streams: str = ""
) -> list[FoldedEvent]:
    """Up to `limit` events after `after` (up to `up_to`) in position order, as folded.

    `streams` is a further SQL condition on the events read (a rebuild's part of the streams).
    """
    query = FOLDED_READ.format(streams=streams)
    return [FoldedEvent(*row) for row in await conn.fetch(query, after, up_to, limit)]


async def head_position(conn: Connection) -> int:
    """The highest committed position (0 for an empty log)."""
    value: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    return value


# recorded_at never decreases as positions grow (append_events stamps it under the
# lock), so the last position recorded by an instant is found by bisecting the
# positions: ~log2(head) primary-key probes in one statement, and no index to keep.
POSITION_AT: Final = """
WITH RECURSIVE search(lo, hi) AS (
    SELECT 0::bigint, coalesce((SELECT max(position) FROM events), 0)
  UNION ALL
    SELECT CASE WHEN probe.recorded THEN probe.mid ELSE search.lo END,
           CASE WHEN probe.recorded THEN search.hi ELSE probe.mid - 1 END
      FROM search,
           LATERAL (SELECT (search.lo + search.hi + 1) / 2 AS mid) AS half,
           LATERAL (SELECT half.mid,
                           coalesce((SELECT e.recorded_at <= $1 FROM events e
                                      WHERE e.position >= half.mid
                                      ORDER BY e.position LIMIT 1), false) AS recorded
                   ) AS probe
     WHERE search.lo < search.hi
)
SELECT lo FROM search WHERE lo >= hi
"""


async def position_at(conn: Connection, instant: datetime) -> int:
    """The last position recorded at or before `instant` (0 when none was)."""
    position: int = await conn.fetchval(POSITION_AT, instant)
    return position


async def recorded_by(conn: Connection, position: int) -> datetime | None:
    """When the last event at or before `position` was recorded (None: no event was)."""
    recorded: datetime | None = await conn.fetchval(
        "SELECT recorded_at FROM events WHERE position <= $1 ORDER BY position DESC LIMIT 1",
        position,
    )
    return recorded
