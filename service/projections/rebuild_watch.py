"""Dropping every kept answer when `legation rebuild` has swapped the read models in.

A rebuild may change what any position answers (that is what it is for: a
damaged row fixed), so the answers kept in memory must go. The rebuild
announces itself on REBUILT_CHANNEL; a notification can be lost while the
LISTEN reconnects, so the read models' table OIDs, which the swap changes, are
also compared now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import asyncpg

from service.log.doorbell import Bell, cancel
from service.projections.answer_cache import AnswerCache

log = logging.getLogger("legation.cache")
CHECK_INTERVAL: Final = 5.0
READ_MODEL_OIDS: Final = """
SELECT array_agg(to_regclass('public.' || name)::oid ORDER BY name)
  FROM unnest(ARRAY['incidents', 'incident_versions']) AS name
"""


class RebuildWatch:
    """Clears `cache` when a rebuild is announced or its swapped tables are seen."""

    def __init__(self, pool: asyncpg.Pool[Any], doorbell: Bell, cache: AnswerCache) -> None:
        self._pool, self._cache = pool, cache
        self._tables: list[int] | None = None
        self._task: asyncio.Task[None] | None = None
        doorbell.on_rebuilt(self.rebuilt)

    def rebuilt(self) -> None:
        """A rebuild swapped the read models in: nothing kept still holds."""
        log.info("the read models were rebuilt; dropping %d kept answers", len(self._cache))
        self._cache.clear()

    async def check(self) -> None:
        """Clear the cache if the read models' tables are not the ones last seen."""
        async with self._pool.acquire() as conn:
            tables: list[int] = await conn.fetchval(READ_MODEL_OIDS)
        if self._tables is not None and tables != self._tables:
            self.rebuilt()
        self._tables = tables

    def start(self) -> None:
        """Check the tables in the background."""
        self._task = asyncio.create_task(self._run(), name="legation-rebuild-watch")

    async def stop(self) -> None:
        """Stop checking."""
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self.check()
            await asyncio.sleep(CHECK_INTERVAL)
