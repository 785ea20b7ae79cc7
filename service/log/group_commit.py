"""Group commit: appends that arrive together in one process share one transaction.

Ordered positions serialise appends behind one lock, which caps one-event
transactions at a few thousand a second. A 100-event transaction costs little
more than a 1-event one, so while one group is being written the next requests
queue up and go in the following group. Each caller still gets its own outcome:
the SQL function checks every request on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from service.log.envelope import NewEvent
from service.log.store import Appended, AppendRefused, AppendRequest, append_many

log = logging.getLogger("legation.group_commit")

_Waiting = tuple[AppendRequest, "asyncio.Future[Appended]"]


class GroupCommit:
    """Queues appends and writes them in groups on connections from `pool`."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        max_group: int = 500,
        on_appended: Callable[[int], None] = lambda events: None,
    ) -> None:
        self.pool = pool  # also where the appenders read the streams they decide on
        self._on_appended = on_appended
        self._max_group = max_group
        self._queue: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the writer task."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="legation-group-commit")

    async def stop(self) -> None:
        """Write what is queued, then stop the writer task."""
        if self._task is None:
            return
        # Not task.cancel(): a group cancelled mid-write would leave its callers
        # waiting forever on an append that may or may not have committed.
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    async def append(
        self, stream: str, expected_version: int | None, events: Sequence[NewEvent]
    ) -> Appended:
        """Append like store.append, sharing a transaction with concurrent callers."""
        if self._task is None or self._stopping:
            raise RuntimeError("the group committer is not running")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.append((AppendRequest(stream, expected_version, tuple(events)), future))
        self._wake.set()
        # shield: a caller that goes away must not cancel a write others share.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            await self._flush_all()
        await self._flush_all()

    async def _flush_all(self) -> None:
        while self._queue:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
            await self._write(group)

    async def _write(self, group: list[_Waiting]) -> None:
        try:
            async with self.pool.acquire() as conn:
                outcomes = await append_many(conn, [request for request, _ in group])
        except Exception as exc:
            if len(group) > 1:
                # One request must not fail its neighbours: retry each alone, so
                # only the one the database refuses hears about it.
                log.warning("group of %d appends failed (%s); retrying one by one", len(group), exc)
                for waiting in group:
                    await self._write([waiting])
                return
            if not group[0][1].done():
                group[0][1].set_exception(exc)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, AppendRefused):
                future.set_exception(outcome)
            else:
                if not outcome.duplicate:
                    self._on_appended(len(outcome.positions))
                future.set_result(outcome)
