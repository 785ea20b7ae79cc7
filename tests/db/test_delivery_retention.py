"""Delivery attempts older than LEGATION_DELIVERY_RETENTION_DAYS are pruned in the background."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.config import Settings
from service.log.doorbell import Doorbell
from service.subscribers.webhooks import Deliverer

# Ages in days of the attempts made, against a retention of 30 days.
OLD = (31, 45, 400)
RECENT = (0, 1, 29)


async def attempts(pool: asyncpg.Pool[Any], ages: tuple[int, ...]) -> None:
    subscription = await pool.fetchval(
        "INSERT INTO subscriptions (id, url, secret, position, active) VALUES"
        " (gen_random_uuid(), 'https://example.org/h', 'whsec_x', 0, false) RETURNING id"
    )
    await pool.executemany(
        "INSERT INTO deliveries (subscription_id, event_id, position, attempt, latency_ms,"
        " attempted_at) VALUES ($1, gen_random_uuid(), 1, 1, 5, now() - make_interval(days => $2))",
        [(subscription, age) for age in ages],
    )


async def ages(pool: asyncpg.Pool[Any]) -> list[int]:
    rows = await pool.fetch(
        "SELECT extract(day FROM now() - attempted_at)::int AS age FROM deliveries ORDER BY age"
    )
    return [row["age"] for row in rows]


async def test_pruning_deletes_in_batches_until_none_is_left(
    dsn: str, pool: asyncpg.Pool[Any]
) -> None:
    await attempts(pool, OLD * 3 + RECENT)
    deliverer = Deliverer(
        pool, Doorbell(dsn), Settings(database_url=dsn, delivery_retention_days=30)
    )
    try:
        assert await deliverer.prune(batch=2) == len(OLD) * 3
    finally:
        await deliverer.stop()
    assert await ages(pool) == list(RECENT)
