"""Webhook subscriptions: create (the secret is shown once), read, pause, delete, deliveries.

A subscription belongs to the key that made it (`owner`, its name): a `subscribe`
key sees and changes only its own, and another's id is a 404 as if it did not
exist; an `admin` key sees every one, including those made before owners
existed (owner NULL), which no other key sees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.http.auth import request_key
from service.http.bodies import json_body
from service.http.headers import POSITION
from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.problems import NotFound, Problem
from service.http.routes.events import log_filter
from service.http.runtime import Runtime
from service.log.store import head_position
from service.subscribers.cloud_events import new_secret
from service.subscribers.sealing import seal
from service.subscribers.ssrf import check_url

Url = Annotated[
    str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+")
]
Names = Annotated[list[str], msgspec.Meta(max_length=20)]
PROBLEMS = (400, 401, 403, 404, 413, 415, 422)
# pg_advisory_xact_lock(class, hashtext(owner)): one key's creations take turns,
# so two at once cannot both see room under the cap ("subs" in ASCII).
OWNER_LOCK: Final = 1_937_072_755


class SubscriptionLimit(Problem):
    """The key already holds as many subscriptions as it may."""

    status, slug, title = 409, "subscription-limit", "The key holds its maximum of subscriptions"


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
    """A page of subscriptions, oldest first; `next_cursor` is null on the last page."""

    items: list[Subscription]
    next_cursor: str | None


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    """Where a page of subscriptions ended: the last one's creation time and id."""

    created_at: datetime
    id: UUID


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
_cursor_decoder = msgspec.json.Decoder(Cursor)
COLUMNS = "id, url, types, countries, position, active, deactivated_reason, created_at"


def _subscription(row: Any) -> Subscription:
    return msgspec.convert(dict(row), Subscription)


def _visible_to(request: Request[Any, Any, Any]) -> str | None:
    """The owner whose subscriptions the request's key sees; None (every one) for admin."""
    key = request_key(request)
    return None if key.allows("admin") else key.name


@post(
    "/v1/subscriptions",
    status_code=201,
    tags=["subscriptions"],
    summary="Subscribe a webhook",
    opt={"body": NewSubscription, "problems": (*PROBLEMS, 409), "scope": "subscribe"},
)
async def create_subscription(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[CreatedSubscription]:
    """Events after `after` (default: the current end) are POSTed to `url`, signed."""
    body = await json_body(request, _new_decoder)
    filters = log_filter(body.types, body.countries)
    await check_url(body.url, runtime.settings.webhook_allow_private)
    owner, cap = request_key(request).name, runtime.settings.max_subscriptions_per_key
    subscription_id, secret = uuid4(), new_secret()
    async with runtime.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", OWNER_LOCK, owner)
        held = await conn.fetchval("SELECT count(*) FROM subscriptions WHERE owner = $1", owner)
        if held >= cap:
            raise SubscriptionLimit(
                f"the key {owner!r} holds {held} subscriptions, the most it may"
                f" (LEGATION_MAX_SUBSCRIPTIONS_PER_KEY={cap}); delete one to make another"
            )
        start = body.after if body.after is not None else await head_position(conn)
        row = await conn.fetchrow(
            f"INSERT INTO subscriptions (id, url, secret, types, countries, position, owner)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
            subscription_id,
            body.url,
            seal(runtime.settings.key_secret, subscription_id, secret),
            list(filters.types),
            list(filters.countries),
            start,
            owner,
        )
    runtime.deliverer.subscriptions_changed()
    created = CreatedSubscription(**msgspec.structs.asdict(_subscription(row)), secret=secret)
    headers = {"Location": f"/v1/subscriptions/{created.id}", POSITION: str(start)}
    return Response(created, status_code=201, headers=headers)


@get(
    "/v1/subscriptions",
    tags=["subscriptions"],
    summary="List subscriptions",
    opt={"problems": (401, 403, 422), "scope": "subscribe"},
)
async def list_subscriptions(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> Response[SubscriptionPage]:
    """The key's subscriptions (every one for admin), oldest first; page on with `cursor`."""
    after = decode_cursor(cursor, _cursor_decoder)
    rows = await runtime.pool.fetch(
        f"SELECT {COLUMNS} FROM subscriptions WHERE ($1::text IS NULL OR owner = $1)"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))"
        " ORDER BY created_at, id LIMIT $4",
        _visible_to(request),
        after and after.created_at,
        after and after.id,
        limit + 1,
    )
    items = [_subscription(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return Response(SubscriptionPage(items, None))
    following = encode_cursor(Cursor(items[-1].created_at, items[-1].id))
    return Response(SubscriptionPage(items, following), headers=next_link(request, following))


async def _one(runtime: Runtime, subscription_id: UUID, owner: str | None) -> Subscription:
    """The subscription if `owner` (None: anyone) holds it; else 404, as for a missing one."""
    row = await runtime.pool.fetchrow(
        f"SELECT {COLUMNS} FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
        subscription_id,
        owner,
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
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    subscription_id: FromPath[UUID],
) -> Subscription:
    """One subscription (without its secret)."""
    return await _one(runtime, subscription_id, _visible_to(request))


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
    row = await runtime.pool.fetchrow(
        "UPDATE subscriptions SET active = $2, deactivated_reason = CASE WHEN $2 THEN NULL"
        " ELSE 'paused' END, attempt = 0, failing_since = NULL, next_attempt_at = now()"
        f" WHERE id = $1 AND ($3::text IS NULL OR owner = $3) RETURNING {COLUMNS}",
        subscription_id,
        change.active,
        _visible_to(request),
    )
    if row is None:
        raise NotFound(f"no subscription {subscription_id}")
    runtime.deliverer.subscriptions_changed()
    return _subscription(row)


@delete(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Delete a subscription",
    opt={"problems": (401, 403, 404), "scope": "subscribe"},
)
async def delete_subscription(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    subscription_id: FromPath[UUID],
) -> None:
    """Stop and forget a subscription and its delivery log."""
    deleted = await runtime.pool.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2) RETURNING id",
        subscription_id,
        _visible_to(request),
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
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    subscription_id: FromPath[UUID],
    limit: Limit = 50,
    cursor: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
) -> Response[DeliveryPage]:
    """Attempts newest first, each with status code, latency, error and next retry."""
    await _one(runtime, subscription_id, _visible_to(request))
    rows = await runtime.pool.fetch(
        "SELECT id, event_id, position, attempt, status_code, latency_ms, error, next_retry_at,"
        " attempted_at FROM deliveries WHERE subscription_id = $1 AND ($2::bigint IS NULL"
        " OR id < $2) ORDER BY id DESC LIMIT $3",
        subscription_id,
        cursor,
        limit + 1,
    )
    items = [msgspec.convert(dict(row), Delivery) for row in rows[:limit]]
    if len(rows) <= limit:
        return Response(DeliveryPage(items, None))
    following = rows[limit - 1]["id"]
    return Response(DeliveryPage(items, following), headers=next_link(request, str(following)))


ROUTES = [
    create_subscription,
    list_subscriptions,
    read_subscription,
    change_subscription,
    delete_subscription,
    list_deliveries,
]
