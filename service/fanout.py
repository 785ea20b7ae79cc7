"""Fan-out of the live log: read new events once per wake-up, hand them to every subscriber.

Each subscriber has a bounded queue; one that falls behind it is marked and catches up
from the database on its own, so a slow client never slows the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final

import msgspec

from service.events import RecordedEvent
from service.feed import Doorbell, cancel
from service.store import LogFilter, head_position

if TYPE_CHECKING:
    import asyncpg

    from service.store import Connection

log = logging.getLogger("legation.fanout")
POLL_INTERVAL: Final = 1.0
PAGE: Final = 1000
QUEUE_BATCHES: Final = 256

READ = """
SELECT position, id, stream, version, type, schema_version, occurred_on, recorded_at,
       data, metadata, countries
  FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


class LiveEvent(msgspec.Struct, frozen=True):
    """An event as fanned out: the envelope, the countries it touches, its SSE message."""

    event: RecordedEvent
    countries: tuple[str, ...]
    frame: bytes


_encoder = msgspec.json.Encoder()


def sse_frame(event: RecordedEvent) -> bytes:
    """The SSE message of an event (built once, sent to every client)."""
    data = _encoder.encode(event)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), data)


def matches(live: LiveEvent, filters: LogFilter) -> bool:
    """Whether an event passes a subscriber's type and country filters."""
    if filters.types and live.event.type not in filters.types:
        return False
    return not filters.countries or any(c in live.countries for c in filters.countries)


async def read_live(conn: Connection, after: int, limit: int) -> list[LiveEvent]:
    """Events after `after` with their countries."""
    rows = await conn.fetch(READ, after, limit)
    live = []
    for r in rows:
        event = RecordedEvent(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], msgspec.Raw(r[8]), msgspec.Raw(r[9])
        )
        live.append(LiveEvent(event, tuple(r[10]), sse_frame(event)))
    return live


class Subscription:
    """One subscriber's bounded queue of event batches."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[LiveEvent]] = asyncio.Queue(QUEUE_BATCHES)
        self.behind = False

    def offer(self, batch: list[LiveEvent]) -> None:
        """Queue a batch, or mark the subscriber behind when its queue is full."""
        if self.behind:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.behind = True


class Fanout:
    """Follows the log for every live subscriber of this process."""

    def __init__(self, pool: asyncpg.Pool[Any], doorbell: Doorbell) -> None:
        self._pool, self._doorbell = pool, doorbell
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.head = 0

    async def start(self) -> None:
        """Start following from the current head of the log."""
        async with self._pool.acquire() as conn:
            self.head = await head_position(conn)
        self._task = asyncio.create_task(self._run(), name="legation-fanout")

    async def stop(self) -> None:
        """Stop following."""
        await cancel(self._task)
        self._task = None

    @property
    def clients(self) -> int:
        """How many subscribers are connected."""
        return len(self._subscriptions)

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        """A subscription for the duration of the `with` block."""
        subscription = Subscription()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def _run(self) -> None:
        while True:
            try:
                await self._deliver_new()
            except (OSError, Exception) as exc:  # keep following; readers catch up by position
                log.warning("fan-out read failed (%s); retrying", exc)
                await asyncio.sleep(POLL_INTERVAL)
                continue
            await self._doorbell.wait(POLL_INTERVAL)

    async def _deliver_new(self) -> None:
        while self._subscriptions:
            async with self._pool.acquire() as conn:
                batch = await read_live(conn, self.head, PAGE)
            if not batch:
                return
            self.head = batch[-1].event.position
            for subscription in list(self._subscriptions):
                subscription.offer(batch)
        if not self._subscriptions:
            # Nobody listens: keep the head current for the next subscriber, unless
            # one arrived meanwhile (it may need what lies past the head read here).
            async with self._pool.acquire() as conn:
                head = await head_position(conn)
            if not self._subscriptions:
                self.head = head
