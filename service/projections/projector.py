"""The projector: follows the log from its checkpoint into the read models.

Each batch of events and the checkpoint after it are written in one transaction
(a crash resumes from the checkpoint, with nothing counted twice). Of several
processes on one database only the holder of an advisory lock projects; the
others stand by and take over when its session ends. A process told not to
project (`LEGATION_PROJECTOR=separate`, beside a `legation project` process)
only follows the checkpoint. Each advance is announced on PROJECTED_CHANNEL, so
processes that do not project learn of it without polling; they read the position
from the checkpoint row, never from the announcement (anyone may NOTIFY).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from service.incidents.domain import evolve
from service.log.database import connect
from service.log.doorbell import PROJECTED_CHANNEL, Signal, cancel
from service.log.store import read_folded
from service.projections import incident_list as incidents
from service.projections import versions
from service.projections.versions import Transition

if TYPE_CHECKING:
    from service.log.doorbell import Bell
    from service.log.envelope import Folded
    from service.log.store import Connection

log = logging.getLogger("legation.projector")
CHECKPOINT: Final = "read_models"
PROJECTOR_LOCK: Final = (1818585454, 2)
BATCH_SIZE: Final = 1000
POLL_INTERVAL: Final = 1.0
LINGER: Final = 0.01
REFRESH_INTERVAL: Final = 0.05
RETRY_DELAY: Final = 1.0


async def checkpoint(conn: Connection) -> int:
    """The last position the read models include."""
    position: int = await conn.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1", CHECKPOINT
    )
    return position


async def project(conn: Connection, events: Sequence[Folded]) -> None:
    """Fold events into every read model: each incident is evolved once per event."""
    # Keyed by stream name: parsing a UUID per event would cost more than the fold.
    # A stream that starts in this batch has nothing projected yet (rows and the
    # checkpoint commit together), so only older streams are looked up.
    opened = {event.stream for event in events if event.version == 1}
    older = {event.stream for event in events} - opened
    ids = [incidents.incident_id(stream) for stream in older]
    states = await incidents.load_states(conn, ids) if ids else {}
    transitions: list[Transition] = []
    for event in events:
        key = event.stream
        before = states.get(key)
        states[key] = after = evolve(before, event)
        transitions.append(Transition(event, before, after))
    await incidents.save(conn, transitions, opened)
    await versions.apply(conn, transitions)


# The announcement is delivered at commit, together with the rows it announces.
ADVANCE: Final = """
WITH moved AS (
    UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1
    RETURNING position
)
SELECT pg_notify($3, position::text) FROM moved
"""


async def project_batch(conn: Connection, limit: int = BATCH_SIZE) -> int:
    """Apply the next events after the checkpoint, checkpoint included, in one transaction.

    Returns the new checkpoint (unchanged when there was nothing to apply).
    """
    async with conn.transaction():
        # FOR UPDATE: were two projectors ever to run at once, the second would
        # wait here and then see the first one's checkpoint, not apply twice.
        position: int = await conn.fetchval(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", CHECKPOINT
        )
        events = await read_folded(conn, position, limit)
        if not events:
            return position
        await project(conn, events)
        await conn.execute(ADVANCE, CHECKPOINT, events[-1].position, PROJECTED_CHANNEL)
        return events[-1].position


class Projector:
    """Keeps the read models following the log while the app runs."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        doorbell: Bell,
        *,
        projects: bool = True,
        on_moved: Callable[[int], None] = lambda position: None,
    ) -> None:
        self._pool, self._dsn, self._doorbell = pool, dsn, doorbell
        self._on_moved = on_moved  # the answer cache drops what the move made stale
        doorbell.on_projected(self.heard)
        self.projects = projects  # False: never take the lock, only follow the checkpoint
        self.position = 0
        self.active = False
        self._advanced = Signal()
        self._task: asyncio.Task[None] | None = None
        self._announced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self._refreshed_at = -REFRESH_INTERVAL

    def start(self) -> None:
        """Start projecting (or standing by) in the background."""
        self._task = asyncio.create_task(self._run(), name="legation-projector")
        self._reader = asyncio.create_task(self._read_announced(), name="legation-checkpoint")

    async def stop(self) -> None:
        """Stop; a batch in flight rolls back and is applied again by the next projector."""
        await cancel(self._reader)
        await cancel(self._task)
        self._task = self._reader = None

    async def caught_up(self, position: int, within: float) -> bool:
        """Wait until the read models include `position`; False after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            if self.position >= position or await self.refresh() >= position:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self._advanced.wait(min(left, REFRESH_INTERVAL))

    async def refresh(self) -> int:
        """The checkpoint, read from the table when another process may be projecting."""
        # The active projector's own position is the authority; a standby reads
        # the table, at most once per interval however many requests wait.
        if self.active or time.monotonic() - self._refreshed_at < REFRESH_INTERVAL:
            return self.position
        async with self._refreshing:
            if time.monotonic() - self._refreshed_at >= REFRESH_INTERVAL:
                await self._read_checkpoint()
        return self.position

    async def advanced(self, within: float) -> bool:
        """Wait for the read models to move on, at most `within` seconds; whether they did."""
        return await self._advanced.wait(within)

    def heard(self) -> None:
        """The projecting process announced a checkpoint (its own announcements included)."""
        self._announced.set()

    async def _read_announced(self) -> None:  # returns only when cancelled
        # One reader for every announcement: a burst heard while it reads costs one
        # more read, not one each.
        while True:
            await self._announced.wait()
            self._announced.clear()
            if self.active:
                continue  # its own announcement: the position is already its own
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._read_checkpoint()

    async def _read_checkpoint(self) -> None:
        async with self._pool.acquire() as conn:
            position = await checkpoint(conn)
        self._refreshed_at = time.monotonic()
        if position > self.position:
            self._moved(position)

    def _moved(self, position: int) -> None:
        self.position = position
        self._on_moved(position)
        self._advanced.fire()

    async def _run(self) -> None:
        if not self.projects:
            await self._only_follow()
            return
        while True:
            try:
                await self._hold_lock_and_follow()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("projector interrupted (%s); retrying", exc)
            except Exception:
                # A bug or an event this code cannot fold: say so loudly, keep
                # retrying (the batch rolled back), and let /ready show the lag.
                log.exception("projector failed; retrying")
            self.active = False
            await asyncio.sleep(RETRY_DELAY)

    async def _only_follow(self) -> None:  # returns only when cancelled
        # Announcements keep the position current; reading the table now and
        # then covers any that were missed while the LISTEN was reconnecting.
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self.refresh()
            await asyncio.sleep(POLL_INTERVAL)

    async def _hold_lock_and_follow(self) -> None:
        lock = await connect(self._dsn)
        try:
            while not await lock.fetchval("SELECT pg_try_advisory_lock($1, $2)", *PROJECTOR_LOCK):
                await self.refresh()
                await self._doorbell.wait(POLL_INTERVAL)
            self.active = True
            log.info("this process is the active projector")
            await self._follow(lock)
        finally:
            with contextlib.suppress(Exception):
                await lock.close()

    async def _follow(self, lock: asyncpg.Connection[Any]) -> None:
        while not lock.is_closed():
            async with self._pool.acquire() as conn:
                position = await project_batch(conn, BATCH_SIZE)
            if position != self.position:
                moved_by = position - self.position
                self._moved(position)
                if moved_by < BATCH_SIZE:
                    # Caught up. A backlog goes on at once, but a trickle of appends
                    # (one client writing) would cost a transaction and a durable
                    # commit each: waiting a moment lets one transaction take several.
                    await asyncio.sleep(LINGER)
                continue
            if await self._doorbell.wait(POLL_INTERVAL):
                # Under load the bell rings for every group commit; lingering a
                # moment lets one projector transaction take many of them.
                await asyncio.sleep(LINGER)
