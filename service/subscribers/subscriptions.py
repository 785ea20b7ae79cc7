"""Webhook subscriptions in the database: made under a per-key cap, read, changed (paused,
pointed elsewhere, replayed), their secret rotated, deleted.

`owner` None means every subscription (an admin key); otherwise only that key's, and
another's is treated as missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import asyncpg
import msgspec

from service.incidents.errors import FieldError, Invalid
from service.log.store import LogFilter, head_position, position_at

if TYPE_CHECKING:
    from service.log.store import Connection

# pg_advisory_xact_lock(class, hashtext(owner)): one key's creations take turns,
# so two at once cannot both see room under the cap ("subs" in ASCII).
OWNER_LOCK: Final = 1_937_072_755


# How long a rotated-out secret still signs deliveries beside the new one.
PREVIOUS_SECRET_LASTS: Final = timedelta(hours=24)


class SubscriptionsFull(Exception):
    """The key `owner` already holds `held` subscriptions, its cap."""

    def __init__(self, owner: str, held: int, cap: int) -> None:
        super().__init__(
            f"the key {owner!r} holds {held} subscriptions, the most it may"
            f" (LEGATION_MAX_SUBSCRIPTIONS_PER_KEY={cap}); delete one to make another"
        )
        self.owner, self.held, self.cap = owner, held, cap


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook subscription (its secret is only ever shown at creation)."""

    id: UUID
    url: str
    types: list[str]
    countries: list[str]
    topics: list[str]
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
    """One delivery attempt: of the event `event_id`, or of a standing it changed
    (`type` legation.standing.changed); `message_id` is the webhook-id it was sent with."""

    event_id: UUID
    position: int
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    next_retry_at: datetime | None
    attempted_at: datetime
    message_id: UUID
    type: str | None  # null for attempts recorded before messages had types


class DeliveryPage(msgspec.Struct, frozen=True):
    """Attempts, newest first."""

    items: list[Delivery]
    next_cursor: int | None


COLUMNS = "id, url, types, countries, topics, position, active, deactivated_reason, created_at"
cursor_decoder = msgspec.json.Decoder(Cursor)


def _subscription(row: Any) -> Subscription:
    return msgspec.convert(dict(row), Subscription)


async def create(
    pool: asyncpg.Pool[Any],
    subscription_id: UUID,
    url: str,
    sealed_secret: str,
    filters: LogFilter,
    topics: list[str],
    after: int | None,
    owner: str,
    cap: int,
) -> Subscription:
    """A new subscription from `after` (default: the log's end); SubscriptionsFull at the cap."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", OWNER_LOCK, owner)
        held = await conn.fetchval("SELECT count(*) FROM subscriptions WHERE owner = $1", owner)
        if held >= cap:
            raise SubscriptionsFull(owner, held, cap)
        start = after if after is not None else await head_position(conn)
        row = await conn.fetchrow(
            f"INSERT INTO subscriptions (id, url, secret, types, countries, position, owner,"
            f" topics) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
            subscription_id,
            url,
            sealed_secret,
            list(filters.types),
            list(filters.countries),
            start,
            owner,
            topics,
        )
    return _subscription(row)


async def page(
    pool: asyncpg.Pool[Any], owner: str | None, cursor: Cursor | None, limit: int
) -> tuple[list[Subscription], Cursor | None]:
    """Up to `limit` subscriptions after `cursor`, oldest first, and where the next page starts."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM subscriptions WHERE ($1::text IS NULL OR owner = $1)"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))"
        " ORDER BY created_at, id LIMIT $4",
        owner,
        cursor and cursor.created_at,
        cursor and cursor.id,
        limit + 1,
    )
    items = [_subscription(row) for row in rows[:limit]]
    following = Cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return items, following


async def one(
    pool: asyncpg.Pool[Any], subscription_id: UUID, owner: str | None
) -> Subscription | None:
    """The subscription if `owner` (None: anyone) holds it."""
    row = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
        subscription_id,
        owner,
    )
    return None if row is None else _subscription(row)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What a PATCH changes (None: as it is): pause or resume, where and what is sent,
    and where delivery goes on from (`after` a position, or the first event recorded at
    or after `after_time`)."""

    active: bool | None = None
    url: str | None = None
    types: tuple[str, ...] | None = None
    countries: tuple[str, ...] | None = None
    topics: list[str] | None = None
    after: int | None = None
    after_time: datetime | None = None

    @property
    def resends(self) -> bool:
        """Whether it changes what is sent where, or from where: a delivery in flight is
        then superseded (see webhook_leases)."""
        moved = self.after is not None or self.after_time is not None
        return moved or self.url is not None or self.chooses

    @property
    def chooses(self) -> bool:
        """Whether it changes which messages an event brings (their count at a position)."""
        return (self.types, self.countries, self.topics) != (None, None, None)


def _field(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", errors=[FieldError(field, message)])


async def _start(conn: Connection, change: Change) -> int | None:
    """The position delivery goes on after; None when the change does not move it."""
    head = await head_position(conn)
    if change.after is not None:
        if change.after > head:
            raise _field("after", f"is beyond the log's head ({head})")
        return change.after
    if change.after_time is None:
        return None
    if change.after_time > await conn.fetchval("SELECT now()"):
        raise _field("after_time", "is in the future: no event was recorded then yet")
    # From the first event recorded then or later: after the last one recorded before.
    return await position_at(conn, change.after_time - timedelta(microseconds=1))


CHANGE = f"""
UPDATE subscriptions SET
    url = coalesce($2, url),
    types = coalesce($3, types),
    countries = coalesce($4, countries),
    topics = coalesce($5, topics),
    position = coalesce($6, position),
    part = CASE WHEN $6::bigint IS NOT NULL OR $9 THEN 0 ELSE part END,
    active = coalesce($7, active),
    deactivated_reason = CASE WHEN $7 THEN NULL WHEN NOT $7 THEN 'paused'
                              ELSE deactivated_reason END,
    epoch = epoch + CASE WHEN $8 THEN 1 ELSE 0 END,
    attempt = CASE WHEN $7::boolean IS NOT NULL OR $8 THEN 0 ELSE attempt END,
    failing_since = CASE WHEN $7::boolean IS NOT NULL OR $8 THEN NULL ELSE failing_since END,
    next_attempt_at = CASE WHEN $7::boolean IS NOT NULL OR $8 THEN now()
                           ELSE next_attempt_at END
 WHERE id = $1
RETURNING {COLUMNS}
"""


async def change(
    pool: asyncpg.Pool[Any], subscription_id: UUID, change: Change, owner: str | None
) -> Subscription | None:
    """Apply a PATCH; None when `owner` holds no such subscription.

    Resumed, or changed in what it sends where, a subscription is tried at once. A
    delivery in flight is not interrupted: its lease holder finds the epoch moved,
    records its attempt without moving the cursor, and gives the lease back.
    """
    async with pool.acquire() as conn, conn.transaction():
        held = await conn.fetchval(
            "SELECT id FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
            " FOR UPDATE",
            subscription_id,
            owner,
        )
        if held is None:
            return None
        row = await conn.fetchrow(
            CHANGE,
            subscription_id,
            change.url,
            None if change.types is None else list(change.types),
            None if change.countries is None else list(change.countries),
            change.topics,
            await _start(conn, change),
            change.active,
            change.resends,
            change.chooses,
        )
    return _subscription(row)


async def rotate(
    pool: asyncpg.Pool[Any], subscription_id: UUID, sealed_secret: str, owner: str | None
) -> datetime | None:
    """Make `sealed_secret` the signing secret; the one it replaces signs beside it until
    the returned instant (a secret rotated out earlier is dropped). None: no such one."""
    until: datetime | None = await pool.fetchval(
        "UPDATE subscriptions SET previous_secret = secret, previous_secret_until = now() + $4,"
        " secret = $2 WHERE id = $1 AND ($3::text IS NULL OR owner = $3)"
        " RETURNING previous_secret_until",
        subscription_id,
        sealed_secret,
        owner,
        PREVIOUS_SECRET_LASTS,
    )
    return until


async def signing(
    pool: asyncpg.Pool[Any], subscription_id: UUID, owner: str | None
) -> asyncpg.Record | None:
    """What a delivery to the subscription needs (where to, its secrets as stored, its
    position), if `owner` (None: anyone) holds it."""
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT id, url, secret, active, position,"
        " CASE WHEN previous_secret_until > now() THEN previous_secret END AS previous_secret"
        " FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
        subscription_id,
        owner,
    )
    return row


async def remove(pool: asyncpg.Pool[Any], subscription_id: UUID, owner: str | None) -> bool:
    """Forget the subscription and its delivery log; False if `owner` holds no such one."""
    deleted = await pool.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR owner = $2) RETURNING id",
        subscription_id,
        owner,
    )
    return deleted is not None


async def deliveries(
    pool: asyncpg.Pool[Any], subscription_id: UUID, before: int | None, limit: int
) -> tuple[list[Delivery], int | None]:
    """Up to `limit` attempts before id `before`, newest first, and the next page's cursor."""
    rows = await pool.fetch(
        "SELECT id, event_id, position, attempt, status_code, latency_ms, error, next_retry_at,"
        " attempted_at, coalesce(message_id, event_id) AS message_id, type"
        " FROM deliveries WHERE subscription_id = $1 AND ($2::bigint IS NULL"
        " OR id < $2) ORDER BY id DESC LIMIT $3",
        subscription_id,
        before,
        limit + 1,
    )
    items = [msgspec.convert(dict(row), Delivery) for row in rows[:limit]]
    return items, (rows[limit - 1]["id"] if len(rows) > limit else None)
