"""The smallest useful Litestar app: the ceilings the real endpoints are measured against.

POST /events decodes a Struct, INSERTs it and answers 201: the ceiling of
`POST /v1/incidents` (same pool size, one round trip to PostgreSQL per request).
GET /minimal answers a small Struct from memory: the ceiling of `GET /v1/countries/RU`.
Both are served like the real server (uvicorn, 1 worker, no access log).
Run: DATABASE_URL=... python -m bench.baseline_app --port P
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar, get, post
from litestar.datastructures import State

from bench.common import EVENTS_TABLE, INSERT_EVENT

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
            yield

    return Litestar(route_handlers=[append, minimal, health], lifespan=[lifespan])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["DATABASE_URL"])
    # As `legation serve` runs uvicorn, so only the app differs.
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False)


if __name__ == "__main__":
    main()
