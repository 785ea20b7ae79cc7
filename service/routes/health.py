"""Liveness and readiness."""

import asyncio

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from service.database import applied_revisions
from service.runtime import Runtime

READY_TIMEOUT = 2.0


class Health(msgspec.Struct, frozen=True):
    """Whether the process is alive."""

    status: str


class Readiness(msgspec.Struct, frozen=True):
    """Whether the service can answer: database reachable and migrated."""

    status: str
    database: str
    migrations: str


@get("/health", tags=["operations"], summary="Liveness")
async def health() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


@get(
    "/ready",
    tags=["operations"],
    summary="Readiness",
    responses={503: ResponseSpec(Readiness, description="Not ready; Retry-After says when")},
)
async def ready(runtime: NamedDependency[Runtime]) -> Response[Readiness]:
    """200 when the database answers and its migrations are at head, else 503."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with runtime.pool.acquire() as conn:
                applied = await applied_revisions(conn)
    except (OSError, TimeoutError, Exception):
        return _unready(
            Readiness(status="unavailable", database="unreachable", migrations="unknown")
        )
    if applied != runtime.migration_heads:
        return _unready(Readiness(status="unavailable", database="ok", migrations="behind"))
    return Response(Readiness(status="ok", database="ok", migrations="head"))


def _unready(body: Readiness) -> Response[Readiness]:
    return Response(body, status_code=503, headers={"Retry-After": "5"})


ROUTES = [health, ready]
