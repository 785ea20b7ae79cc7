"""Webhook subscriptions: create (the secret is shown once), read, pause, delete, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.headers import POSITION
from service.problems import NotFound
from service.routes.bodies import json_body
from service.routes.events import log_filter
from service.runtime import Runtime
from service.ssrf import check_url
from service.store import head_position
from service.webhooks import new_secret

Url = Annotated[
    str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+")
]
Names = Annotated[list[str], msgspec.Meta(max_length=20)]
PROBLEMS = (400, 401, 403, 404, 413, 415, 422)


class NewSubscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where to POST events, which ones (empty filters: all), and from which position."""

    url: Url
    types: Names = msgspec.field(default_factory=list)
    countries: Names = msgspec.field(default_factory=list)
    after: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None


class SubscriptionChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pause (false) or resume (true) a subscription."""

    active: bool


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook subscription (its secret is only ever shown at creation)."""

    id: UUID
    url: str
    types: list[str]
    countries: list[str]
    position: int
    active: bool
    deactivated_reason: str | None
    created_at: datetime


class CreatedSubscription(Subscription, frozen=True, kw_only=True):
    """A new subscription with the secret to verify its signatures."""

    secret: str


class SubscriptionPage(msgspec.Struct, frozen=True):
    """Every subscription."""

    items: list[Subscription]


class Delivery(msgspec.Struct, frozen=True):
    """One delivery attempt."""

    event_id: UUID
    position: int
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    next_retry_at: datetime | None
    attempted_at: datetime


class DeliveryPage(msgspec.Struct, frozen=True):
    """Attempts, newest first."""

    items: list[Delivery]
    next_cursor: int | None


_new_decoder = msgspec.json.Decoder(NewSubscription)
_change_decoder = msgspec.json.Decoder(SubscriptionChange)
COLUMNS = "id, url, types, countries, position, active, deactivated_reason, created_at"


def _subscription(row: Any) -> Subscription:
    return msgspec.convert(dict(row), Subscription)


@post(
    "/v1/subscriptions",
    status_code=201,
    tags=["subscriptions"],
    summary="Subscribe a webhook",
    opt={"body": NewSubscription, "problems": PROBLEMS, "scope": "subscribe"},
)
async def create_subscription(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[CreatedSubscription]:
    """Events after `after` (default: the current end) are POSTed to `url`, signed."""
    body = await json_body(request, _new_decoder)
    filters = log_filter(body.types, body.countries)
    await check_url(body.url, runtime.settings.webhook_allow_private)
    secret = new_secret()
    async with runtime.pool.acquire() as conn:
        start = body.after if body.after is not None else await head_position(conn)
        row = await conn.fetchrow(
            f"INSERT INTO subscriptions (id, url, secret, types, countries, position)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
            uuid4(),
            body.url,
            secret,
            list(filters.types),
            list(filters.countries),
            start,
        )
    runtime.deliverer.subscriptions_changed()
    created = CreatedSubscription(**msgspec.structs.asdict(_subscription(row)), secret=secret)
    headers = {"Location": f"/v1/subscriptions/{created.id}", POSITION: str(start)}
    return Response(created, status_code=201, headers=headers)


@get(
    "/v1/subscriptions",
    tags=["subscriptions"],
    summary="List subscriptions",
    opt={"problems": (401, 403), "scope": "subscribe"},
)
async def list_subscriptions(runtime: NamedDependency[Runtime]) -> SubscriptionPage:
    """Every subscription, oldest first."""
    rows = await runtime.pool.fetch(f"SELECT {COLUMNS} FROM subscriptions ORDER BY created_at, id")
    return SubscriptionPage([_subscription(row) for row in rows])


async def _one(runtime: Runtime, subscription_id: UUID) -> Subscription:
    row = await runtime.pool.fetchrow(
        f"SELECT {COLUMNS} FROM subscriptions WHERE id = $1", subscription_id
    )
    if row is None:
        raise NotFound(f"no subscription {subscription_id}")
    return _subscription(row)


@get(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Read a subscription",
    opt={"problems": (401, 403, 404), "scope": "subscribe"},
)
async def read_subscription(
    runtime: NamedDependency[Runtime], subscription_id: FromPath[UUID]
) -> Subscription:
    """One subscription (without its secret)."""
    return await _one(runtime, subscription_id)


@patch(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Pause or resume a subscription",
    opt={"body": SubscriptionChange, "problems": PROBLEMS, "scope": "subscribe"},
)
async def change_subscription(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    subscription_id: FromPath[UUID],
) -> Subscription:
    """`{"active": false}` pauses deliveries; `true` resumes them where they stopped."""
    change = await json_body(request, _change_decoder)
    await runtime.pool.execute(
        "UPDATE subscriptions SET active = $2, deactivated_reason = CASE WHEN $2 THEN NULL"
        " ELSE 'paused' END, attempt = 0, failing_since = NULL, next_attempt_at = now()"
        " WHERE id = $1",
        subscription_id,
        change.active,
    )
    runtime.deliverer.subscriptions_changed()
    return await _one(runtime, subscription_id)


@delete(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Delete a subscription",
    opt={"problems": (401, 403, 404), "scope": "subscribe"},
)
async def delete_subscription(
    runtime: NamedDependency[Runtime], subscription_id: FromPath[UUID]
) -> None:
    """Stop and forget a subscription and its delivery log."""
    deleted = await runtime.pool.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 RETURNING id", subscription_id
    )
    if deleted is None:
        raise NotFound(f"no subscription {subscription_id}")


@get(
    "/v1/subscriptions/{subscription_id:uuid}/deliveries",
    tags=["subscriptions"],
    summary="A subscription's delivery attempts",
    opt={"problems": (401, 403, 404, 422), "scope": "subscribe"},
)
async def list_deliveries(
    runtime: NamedDependency[Runtime],
    subscription_id: FromPath[UUID],
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
) -> DeliveryPage:
    """Attempts newest first, each with status code, latency, error and next retry."""
    await _one(runtime, subscription_id)
    rows = await runtime.pool.fetch(
        "SELECT id, event_id, position, attempt, status_code, latency_ms, error, next_retry_at,"
        " attempted_at FROM deliveries WHERE subscription_id = $1 AND ($2::bigint IS NULL"
        " OR id < $2) ORDER BY id DESC LIMIT $3",
        subscription_id,
        cursor,
        limit + 1,
    )
    items = [msgspec.convert(dict(row), Delivery) for row in rows[:limit]]
    return DeliveryPage(items, rows[limit - 1]["id"] if len(rows) > limit else None)


ROUTES = [
    create_subscription,
    list_subscriptions,
    read_subscription,
    change_subscription,
    delete_subscription,
    list_deliveries,
]
