"""The deliverer on the database alone: with no active subscription it asks less often."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.config import Settings
from service.log.doorbell import Doorbell
from service.subscribers.webhooks import Deliverer


class CountingPool:
    """A pool that counts the probes the deliverer makes."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool, self.probes = pool, 0

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.probes += 1
        return await self.pool.fetchrow(query, *args)

    def acquire(self) -> Any:
        return self.pool.acquire()


async def test_with_no_active_subscription_the_deliverer_stops_asking_for_a_while(
    dsn: str, pool: asyncpg.Pool[Any]
) -> None:
    counting = CountingPool(pool)
    deliverer = Deliverer(counting, Doorbell(dsn), Settings(database_url=dsn))  # type: ignore[arg-type]
    try:
        assert not await deliverer.deliver_one()
        assert not await deliverer.deliver_one()  # believed: no look at the table
        assert counting.probes == 1
        await pool.execute(
            "INSERT INTO subscriptions (id, url, secret, position) "
            "VALUES (gen_random_uuid(), 'http://127.0.0.1:9/hooks', 's', 0)"
        )
        deliverer.subscriptions_changed()
        assert not await deliverer.deliver_one()  # active now, but nothing in the log is due
        assert not await deliverer.deliver_one()
        assert counting.probes == 3  # while one is active, every ring looks
    finally:
        await deliverer.stop()
