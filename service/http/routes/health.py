"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from service.http.metrics import Metrics, render
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.log.migrations import applied_revisions
from service.log.replay import replay_lag
from service.log.store import head_position
from service.projections.projector import checkpoint
from service.subscribers.fanout import Fanout
from service.subscribers.webhooks import Deliverer

READY_TIMEOUT = 2.0


class Health(msgspec.Struct, frozen=True):
    """Whether the process is alive."""

    status: str


class Readiness(msgspec.Struct, frozen=True, omit_defaults=True):
    """Whether the service can answer: database reachable and migrated; how far behind."""

    status: str
    database: str
    migrations: str
    log_head: int | None = None
    projected: int | None = None
    projector_lag: int | None = None
    # On a hot standby: seconds its replay trails the WAL it received (absent on a primary).
    replay_lag_seconds: float | None = None


@get(
    "/health",
    tags=["operations"],
    summary="Liveness",
    operation_id="getHealth",
    opt=route_meta(scope="public"),
)
async def health() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


@get(
    "/ready",
    tags=["operations"],
    summary="Readiness",
    operation_id="getReadiness",
    opt=route_meta(scope="public"),
    responses={503: ResponseSpec(Readiness, description="Not ready; Retry-After says when")},
)
async def ready(
    pool: NamedDependency[Pool], migration_heads: NamedDependency[frozenset[str]]
) -> Response[Readiness]:
    """200 when the database answers and its migrations are at head, else 503."""
    try:
        async with asyncio.timeout(READY_TIMEOUT), pool.acquire() as conn:
            if await applied_revisions(conn) != migration_heads:
                return _unready(Readiness("unavailable", database="ok", migrations="behind"))
            head, projected = await head_position(conn), await checkpoint(conn)
            lag = await replay_lag(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return _unready(Readiness("unavailable", database="unreachable", migrations="unknown"))
    return Response(Readiness("ok", "ok", "head", head, projected, head - projected, lag))


def _unready(body: Readiness) -> Response[Readiness]:
    return Response(body, status_code=503, headers={"Retry-After": "5"})


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    operation_id="getMetrics",
    media_type="text/plain",
    opt=route_meta(scope="read"),
)
async def metrics(
    pool: NamedDependency[Pool],
    metrics: NamedDependency[Metrics],
    deliverer: NamedDependency[Deliverer],
    fanout: NamedDependency[Fanout],
) -> Response[str]:
    """Requests, latencies, appends, projector lag, webhook deliveries and SSE clients."""
    async with pool.acquire() as conn:
        head, projected = await head_position(conn), await checkpoint(conn)
    text = render(metrics, _gauges(metrics, deliverer, fanout, head, projected))
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _gauges(
    metrics: Metrics, deliverer: Deliverer, fanout: Fanout, head: int, projected: int
) -> dict[str, tuple[str, int]]:
    return {
        "legation_events_appended_total": (
            "counter events this process appended",
            metrics.appended,
        ),
        "legation_log_head_position": ("gauge the highest position in the log", head),
        "legation_projector_lag_positions": (
            "gauge positions the read models are behind the log",
            head - projected,
        ),
        "legation_webhook_deliveries_total": (
            "counter webhook deliveries acknowledged by their receivers",
            deliverer.delivered,
        ),
        "legation_webhook_failures_total": (
            "counter webhook attempts that failed",
            deliverer.failed,
        ),
        "legation_sse_clients": ("gauge connected event stream clients", fanout.clients),
    }


ROUTES = [health, ready, metrics]
