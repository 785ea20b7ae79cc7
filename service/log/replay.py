"""Following a hot standby, where LISTEN is refused: what replay brought is polled.

A standby replays the primary's WAL in the primary's commit order. Whenever the
replayed WAL location moves, the followers re-read the log and the projector's
checkpoint by position, exactly as when a NOTIFY rang on the primary; the
location only says "look again", as a notification does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from service.log.doorbell import Bell

if TYPE_CHECKING:
    from service.log.store import Connection

log = logging.getLogger("legation.replay")

# Replayed on a standby, written on a primary (a read-only server may point at one,
# say after a promotion: then the replay location would stand still).
REPLAYED: Final = """
SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END
"""
# How far replay trails what the standby has received, in seconds: 0 when everything
# received is applied, else the age of the last transaction replayed (PostgreSQL's
# monitoring docs); None on a primary, or before any transaction was replayed.
LAG: Final = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN NULL
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
  ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END
"""


async def replay_lag(conn: Connection) -> float | None:
    """Seconds the standby's replay trails (None on a primary)."""
    lag: float | None = await conn.fetchval(LAG)
    return lag


class ReplayBell(Bell):
    """Rings, and announces the checkpoint, whenever the standby has replayed more WAL."""

    def __init__(self, pool: asyncpg.Pool[Any], interval: float) -> None:
        super().__init__()
        self._pool, self._interval = pool, interval
        self._replayed: object = None
        self._failing = False

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._interval)

    async def poll(self) -> bool:
        """Look at the replay location once; whether it moved (and the bell rang)."""
        try:
            replayed = await self._pool.fetchval(REPLAYED)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._failing:  # once per outage, not once per poll
                log.warning("reading the standby's replay location failed (%s)", exc)
            self._failing = True
            self.connected.clear()
            return False
        self._failing = False
        self.connected.set()
        if replayed == self._replayed:
            return False
        self._replayed = replayed
        self.ring()
        self.announce_projected()
        return True
