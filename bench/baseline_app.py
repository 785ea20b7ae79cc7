"""The smallest useful Litestar app: the ceilings the real endpoints are measured against.

POST /events decodes a Struct, INSERTs it and answers 201: the ceiling of
`POST /v1/incidents` (same pool size, one round trip to PostgreSQL per request).
GET /minimal answers a small Struct from memory: the ceiling of `GET /v1/countries/RU`.
GET /minimal/events reads a page of the `events` table and the log's head, and answers
them in the shape of `GET /v1/events`: the ceiling of paging the log.
All are served like the real server (uvicorn, 1 worker, no access log).
Run: DATABASE_URL=... python -m bench.baseline_app --port P
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar, get, post
from litestar.datastructures import State

from bench.common import EVENTS_TABLE, INSERT_EVENT
from service.log.database import create_pool

_METADATA = msgspec.json.encode({"actor": "bench"}).decode()


class Source(msgspec.Struct):
    outlet: str


class Report(msgspec.Struct):
    """The incident body the real endpoint receives, so both decode the same bytes."""

    kind: str
    occurred_on: str
    expelling: str
    expelled: str
    count: int
    sources: list[Source]


class Appended(msgspec.Struct):
    id: str
    position: int


@post("/events", status_code=201)
async def append(data: Report, state: State) -> Appended:
    pool: asyncpg.Pool[Any] = state.pool
    event_id = uuid4()
    position = await pool.fetchval(
        INSERT_EVENT,
        event_id,
        f"incident-{event_id}",
        1,
        "IncidentReported",
        msgspec.json.encode(data).decode(),
        _METADATA,
    )
    return Appended(str(event_id), int(position))


class Minimal(msgspec.Struct):
    """A few fields, as a standing's answer has, without any of its work."""

    code: str
    expelled: int
    position: int


_MINIMAL = Minimal("RU", 15, 6)


@get("/minimal")
async def minimal() -> Minimal:
    return _MINIMAL


class Event(msgspec.Struct):
    """An event as `GET /v1/events` answers it, data and metadata embedded as stored."""

    position: int
    id: UUID
    stream: str
    version: int
    type: str
    schema_version: int
    occurred_on: date | None
    recorded_at: datetime
    data: msgspec.Raw
    metadata: msgspec.Raw


class EventPage(msgspec.Struct):
    """The body of `GET /v1/events`."""

    items: list[Event]
    last_position: int
    next: str


# The real endpoint's query with no filter given, and its head query.
PAGE = """
SELECT position, id, stream, version, type, schema_version, occurred_on, recorded_at,
       data, metadata
  FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""
HEAD = "SELECT coalesce(max(position), 0) FROM events"


@get("/minimal/events")
async def events_page(state: State, after: int = 0, limit: int = 100) -> EventPage:
    pool: asyncpg.Pool[Any] = state.read_pool
    async with pool.acquire() as conn:
        rows = await conn.fetch(PAGE, after, limit)
        head = await conn.fetchval(HEAD)
    items = [
        Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], msgspec.Raw(r[8]), msgspec.Raw(r[9]))
        for r in rows
    ]
    last = items[-1].position if items else after
    return EventPage(items, head, f"/minimal/events?after={last}&limit={limit}")


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(dsn: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Pool bounds as in service.config.Settings defaults, so neither side gets more.
        async with asyncpg.create_pool(dsn, min_size=2, max_size=10) as pool:
            await pool.execute(EVENTS_TABLE)
            app.state.pool = pool
            # Reads get the service's own pool (jsonb as bytes, no reset round trip
            # on release): a page costs the same two queries on both sides.
            async with await create_pool(dsn) as read_pool:
                app.state.read_pool = read_pool
                yield

    return Litestar(route_handlers=[append, minimal, events_page, health], lifespan=[lifespan])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["DATABASE_URL"])
    # As `legation serve` runs uvicorn, so only the app differs.
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False)


if __name__ == "__main__":
    main()
