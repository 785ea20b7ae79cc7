"""Webhook subscriptions: create (the secret is shown once), read, change (pause, point
elsewhere, replay or skip), rotate the secret, ping, delete, deliveries.

A subscription belongs to the key that made it (`owner`, its name): a `subscribe`
key sees and changes only its own, and another's id is a 404 as if it did not
exist; an `admin` key sees every one, including those made before owners
existed (owner NULL), which no other key sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from msgspec import UNSET, UnsetType

from service.config import Settings
from service.http.auth import request_key
from service.http.bodies import json_body
from service.http.headers import POSITION
from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.problems import Conflict, FieldError, InvalidInput, NotFound
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.events import log_filter
from service.subscribers import subscriptions
from service.subscribers.cloud_events import new_secret
from service.subscribers.sealing import seal
from service.subscribers.ssrf import check_url
from service.subscribers.subscriptions import (
    Change,
    CreatedSubscription,
    DeliveryPage,
    Subscription,
    SubscriptionPage,
)
from service.subscribers.webhook_posts import Outcome
from service.subscribers.webhooks import Deliverer

Url = Annotated[
    str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+")
]
Names = Annotated[list[str], msgspec.Meta(max_length=20)]
PROBLEMS = (400, 401, 403, 404, 413, 415, 422)


Topics = Annotated[
    list[Literal["events", "standings"]],
    msgspec.Meta(
        min_length=1,
        max_length=2,
        description="`events`: the log's events; `standings`: a legation.standing.changed "
        "notification per actor whose standing an event changed",
    ),
]
Position = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


class NewSubscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where to POST events, which ones (empty filters: all), what about them (`topics`),
    and from which position."""

    url: Url
    types: Names = msgspec.field(default_factory=list)
    countries: Names = msgspec.field(default_factory=list)
    topics: Topics = msgspec.field(default_factory=lambda: ["events"])
    after: Position | None = None


class SubscriptionChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Any of: pause (`active` false) or resume; another `url`, `types`, `countries` or
    `topics`; go on after a position (`after`: replay or skip) or from the first event
    recorded at or after an instant (`after_time`)."""

    active: bool | UnsetType = UNSET
    url: Url | UnsetType = UNSET
    types: Names | UnsetType = UNSET
    countries: Names | UnsetType = UNSET
    topics: Topics | UnsetType = UNSET
    after: Position | UnsetType = UNSET
    after_time: Instant | UnsetType = UNSET


class RotatedSecret(msgspec.Struct, frozen=True):
    """The new signing secret (shown once); the previous one signs beside it until
    `previous_secret_expires_at`."""

    id: UUID
    secret: str
    previous_secret_expires_at: datetime


class PingOutcome(msgspec.Struct, frozen=True):
    """What the receiver made of a ping: only a 2xx acknowledges."""

    acknowledged: bool
    status_code: int | None
    latency_ms: int
    error: str | None


class SubscriptionInactive(Conflict):
    """The subscription is deactivated: nothing is sent to it."""

    slug, title = "subscription-inactive", "The subscription is deactivated"


_new_decoder = msgspec.json.Decoder(NewSubscription)
_change_decoder = msgspec.json.Decoder(SubscriptionChange)


def _given(value: Any) -> Any:
    return None if value is UNSET else value


def _topics(topics: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(topics))


def _refuse(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[FieldError(field, message)])


async def _change(body: SubscriptionChange, settings: Settings) -> Change:
    """The change a PATCH body asks for, checked as at creation."""
    given = {
        name: value
        for name in body.__struct_fields__
        if (value := getattr(body, name)) is not UNSET
    }
    if not given:
        raise _refuse("body", f"name at least one of {', '.join(body.__struct_fields__)}")
    if "after" in given and "after_time" in given:
        raise _refuse("after_time", "give `after` or `after_time`, not both")
    filters = log_filter(given.get("types", []), given.get("countries", []))
    if isinstance(body.url, str):
        await check_url(body.url, settings.webhook_allow_private)
    return Change(
        active=_given(body.active),
        url=_given(body.url),
        types=filters.types if "types" in given else None,
        countries=filters.countries if "countries" in given else None,
        topics=_topics(body.topics) if isinstance(body.topics, list) else None,
        after=_given(body.after),
        after_time=_given(body.after_time),
    )


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
    topics = _topics(body.topics)
    made = await subscriptions.create(
        pool, subscription_id, body.url, sealed, filters, topics, body.after, owner, cap
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
    summary="Change a subscription: pause, resume, point elsewhere, replay or skip",
    operation_id="updateSubscription",
    opt=route_meta(body=SubscriptionChange, problems=PROBLEMS, scope="subscribe"),
)
async def change_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
    deliverer: NamedDependency[Deliverer],
    subscription_id: FromPath[UUID],
) -> Subscription:
    """`{"active": false}` pauses deliveries; `true` resumes them where they stopped.

    `url` (checked as at creation), `types`, `countries` and `topics` replace the
    subscription's own; `after` (a position up to the log's head) or `after_time` (RFC
    3339, not in the future: from the first event recorded then or later) moves where
    delivery goes on, back (a replay) or forward (a skip). Deliveries stay in log order:
    one in flight when the change lands is recorded but moves nothing, and the next one
    starts where the change says.
    """
    body = await json_body(request, _change_decoder)
    wanted = await _change(body, settings)
    owner = _visible_to(request)
    changed = await subscriptions.change(pool, subscription_id, wanted, owner)
    found = _found(changed, subscription_id)
    deliverer.subscriptions_changed()
    return found


@post(
    "/v1/subscriptions/{subscription_id:uuid}/secret",
    status_code=200,
    tags=["subscriptions"],
    summary="Rotate a subscription's signing secret",
    operation_id="rotateSubscriptionSecret",
    opt=route_meta(problems=(401, 403, 404), scope="subscribe"),
)
async def rotate_secret(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
    subscription_id: FromPath[UUID],
) -> RotatedSecret:
    """A new secret, shown only here; for 24 hours every delivery carries a signature with
    each of the two (space-separated in webhook-signature), so receivers can switch over."""
    secret = new_secret()
    sealed = seal(settings.key_secret, subscription_id, secret)
    until = await subscriptions.rotate(pool, subscription_id, sealed, _visible_to(request))
    if until is None:
        raise NotFound(f"no subscription {subscription_id}")
    return RotatedSecret(subscription_id, secret, until)


@post(
    "/v1/subscriptions/{subscription_id:uuid}/ping",
    status_code=200,
    tags=["subscriptions"],
    summary="Send a subscription a ping now",
    operation_id="pingSubscription",
    opt=route_meta(problems=(401, 403, 404, 409), scope="subscribe"),
)
async def ping_subscription(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    deliverer: NamedDependency[Deliverer],
    subscription_id: FromPath[UUID],
) -> PingOutcome:
    """POST one signed `legation.ping` CloudEvent to the URL now, outside log order (it
    neither waits for nor moves the subscription's position), and answer with the
    receiver's status and latency. 409 for a deactivated subscription."""
    row = await subscriptions.signing(pool, subscription_id, _visible_to(request))
    if row is None:
        raise NotFound(f"no subscription {subscription_id}")
    if not row["active"]:
        message = 'is false: resume it with PATCH {"active": true} first'
        raise SubscriptionInactive(
            f"subscription {subscription_id} is deactivated; active: {message}",
            errors=[FieldError("active", message)],
        )
    outcome: Outcome = await deliverer.ping(row)
    return PingOutcome(outcome.acknowledged, outcome.status_code, outcome.latency_ms, outcome.error)


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
    rotate_secret,
    ping_subscription,
    delete_subscription,
    list_deliveries,
]
