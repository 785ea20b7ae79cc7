"""Webhook subscriptions in the database: made under a per-key cap, read, paused, deleted.

`owner` None means every subscription (an admin key); otherwise only that key's, and
another's is treated as missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import msgspec

from service.log.store import LogFilter, head_position

# pg_advisory_xact_lock(class, hashtext(owner)): one key's creations take turns,
# so two at once cannot both see room under the cap ("subs" in ASCII).
OWNER_LOCK: Final = 1_937_072_755


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


COLUMNS = "id, url, types, countries, position, active, deactivated_reason, created_at"
cursor_decoder = msgspec.json.Decoder(Cursor)


def _subscription(row: Any) -> Subscription:
    return msgspec.convert(dict(row), Subscription)


async def create(
    pool: asyncpg.Pool[Any],
    subscription_id: UUID,
    url: str,
    sealed_secret: str,
    filters: LogFilter,
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
            f"INSERT INTO subscriptions (id, url, secret, types, countries, position, owner)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
            subscription_id,
            url,
            sealed_secret,
            list(filters.types),
            list(filters.countries),
            start,
            owner,
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


async def set_active(
    pool: asyncpg.Pool[Any], subscription_id: UUID, active: bool, owner: str | None
) -> Subscription | None:
    """Pause or resume; a resumed one is retried at once, from where it stopped."""
    row = await pool.fetchrow(
        "UPDATE subscriptions SET active = $2, deactivated_reason = CASE WHEN $2 THEN NULL"
        " ELSE 'paused' END, attempt = 0, failing_since = NULL, next_attempt_at = now()"
        f" WHERE id = $1 AND ($3::text IS NULL OR owner = $3) RETURNING {COLUMNS}",
        subscription_id,
        active,
        owner,
    )
    return None if row is None else _subscription(row)


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
        " attempted_at FROM deliveries WHERE subscription_id = $1 AND ($2::bigint IS NULL"
        " OR id < $2) ORDER BY id DESC LIMIT $3",
        subscription_id,
        before,
        limit + 1,
    )
    items = [msgspec.convert(dict(row), Delivery) for row in rows[:limit]]
    return items, (rows[limit - 1]["id"] if len(rows) > limit else None)
