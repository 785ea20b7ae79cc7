"""Webhook subscriptions: create (the secret is shown once), read, pause, delete, deliveries.

A subscription belongs to the key that made it (`owner`, its name): a `subscribe`
key sees and changes only its own, and another's id is a 404 as if it did not
exist; an `admin` key sees every one, including those made before owners
existed (owner NULL), which no other key sees.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.config import Settings
from service.http.auth import request_key
from service.http.bodies import json_body
from service.http.headers import POSITION
from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.problems import NotFound
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.events import log_filter
from service.subscribers import subscriptions
from service.subscribers.cloud_events import new_secret
from service.subscribers.sealing import seal
from service.subscribers.ssrf import check_url
from service.subscribers.subscriptions import (
    CreatedSubscription,
    DeliveryPage,
    Subscription,
    SubscriptionPage,
)
from service.subscribers.webhooks import Deliverer

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


_new_decoder = msgspec.json.Decoder(NewSubscription)
_change_decoder = msgspec.json.Decoder(SubscriptionChange)


def _visible_to(request: Request[Any, Any, Any]) -> str | None:
    """The owner whose subscriptions the request's key sees; None (every one) for admin."""
    key = request_key(request)
    return None if key.allows("admin") else key.name


def _found(subscription: Subscription | None, subscription_id: UUID) -> Subscription:
    if subscription is None:
        raise NotFound(f"no subscription {subscription_id}")
    return subscription


@post(
    "/v1/subscriptions",
    status_code=201,
    tags=["subscriptions"],
    summary="Subscribe a webhook",
    operation_id="createSubscription",
    opt=route_meta(
        body=NewSubscription,
        problems=(*PROBLEMS, 409),
        scope="subscribe",
        headers=("Location", "Legation-Position"),
    ),
)
async def create_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
    deliverer: NamedDependency[Deliverer],
) -> Response[CreatedSubscription]:
    """Events after `after` (default: the current end) are POSTed to `url`, signed."""
    body = await json_body(request, _new_decoder)
    filters = log_filter(body.types, body.countries)
    await check_url(body.url, settings.webhook_allow_private)
    owner, subscription_id, secret = request_key(request).name, uuid4(), new_secret()
    sealed = seal(settings.key_secret, subscription_id, secret)
    cap = settings.max_subscriptions_per_key
    made = await subscriptions.create(
        pool, subscription_id, body.url, sealed, filters, body.after, owner, cap
    )
    deliverer.subscriptions_changed()
    created = CreatedSubscription(**msgspec.structs.asdict(made), secret=secret)
    headers = {"Location": f"/v1/subscriptions/{created.id}", POSITION: str(made.position)}
    return Response(created, status_code=201, headers=headers)


@get(
    "/v1/subscriptions",
    tags=["subscriptions"],
    summary="List subscriptions",
    operation_id="listSubscriptions",
    opt=route_meta(problems=(401, 403, 422), scope="subscribe", headers=("Link",)),
)
async def list_subscriptions(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> Response[SubscriptionPage]:
    """The key's subscriptions (every one for admin), oldest first; page on with `cursor`."""
    after = decode_cursor(cursor, subscriptions.cursor_decoder)
    items, following = await subscriptions.page(pool, _visible_to(request), after, limit)
    if following is None:
        return Response(SubscriptionPage(items, None))
    token = encode_cursor(following)
    return Response(SubscriptionPage(items, token), headers=next_link(request, token))


@get(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Read a subscription",
    operation_id="getSubscription",
    opt=route_meta(problems=(401, 403, 404), scope="subscribe"),
)
async def read_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    subscription_id: FromPath[UUID],
) -> Subscription:
    """One subscription (without its secret)."""
    found = await subscriptions.one(pool, subscription_id, _visible_to(request))
    return _found(found, subscription_id)


@patch(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Pause or resume a subscription",
    operation_id="updateSubscription",
    opt=route_meta(body=SubscriptionChange, problems=PROBLEMS, scope="subscribe"),
)
async def change_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    deliverer: NamedDependency[Deliverer],
    subscription_id: FromPath[UUID],
) -> Subscription:
    """`{"active": false}` pauses deliveries; `true` resumes them where they stopped."""
    change = await json_body(request, _change_decoder)
    owner = _visible_to(request)
    changed = await subscriptions.set_active(pool, subscription_id, change.active, owner)
    found = _found(changed, subscription_id)
    deliverer.subscriptions_changed()
    return found


@delete(
    "/v1/subscriptions/{subscription_id:uuid}",
    tags=["subscriptions"],
    summary="Delete a subscription",
    operation_id="deleteSubscription",
    opt=route_meta(problems=(401, 403, 404), scope="subscribe"),
)
async def delete_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    subscription_id: FromPath[UUID],
) -> None:
    """Stop and forget a subscription and its delivery log."""
    if not await subscriptions.remove(pool, subscription_id, _visible_to(request)):
        raise NotFound(f"no subscription {subscription_id}")


@get(
    "/v1/subscriptions/{subscription_id:uuid}/deliveries",
    tags=["subscriptions"],
    summary="A subscription's delivery attempts",
    operation_id="listSubscriptionDeliveries",
    opt=route_meta(problems=(401, 403, 404, 422), scope="subscribe", headers=("Link",)),
)
async def list_deliveries(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    subscription_id: FromPath[UUID],
    limit: Limit = 50,
    cursor: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
) -> Response[DeliveryPage]:
    """Attempts newest first, each with status code, latency, error and next retry."""
    _found(await subscriptions.one(pool, subscription_id, _visible_to(request)), subscription_id)
    items, following = await subscriptions.deliveries(pool, subscription_id, cursor, limit)
    if following is None:
        return Response(DeliveryPage(items, None))
    return Response(DeliveryPage(items, following), headers=next_link(request, str(following)))


ROUTES = [
    create_subscription,
    list_subscriptions,
    read_subscription,
    change_subscription,
    delete_subscription,
    list_deliveries,
]
