"""Fan-out of the live log: read new events once per wake-up, hand them to every subscriber.

A subscriber whose client keeps up gets its messages from the fan-out directly; one
that does not has its batches kept, up to a bound past which it is marked behind and
catches up from the database on its own, so a slow client never slows the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import msgspec

from service.log.doorbell import Bell, cancel
from service.log.envelope import EVENT_COLUMNS, RecordedEvent, recorded
from service.log.store import LogFilter, head_position
from service.subscribers.data_schemas import dataschema

if TYPE_CHECKING:
    import asyncpg

    from service.log.store import Connection

log = logging.getLogger("legation.fanout")
POLL_INTERVAL: Final = 1.0
HEAD_INTERVAL: Final = 0.1  # how often the head is read while nobody follows
PAGE: Final = 1000
QUEUE_BATCHES: Final = 256
SLICE: Final = 256  # followers offered a batch between chances for the loop's other work
HEARTBEAT: Final = b": heartbeat\n\n"

READ = f"""
SELECT {EVENT_COLUMNS}, countries FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""


def framed(chunk: bytes) -> bytes:
    """Messages as a chunk of a chunked HTTP/1.1 body (the stream's), as the server frames it."""
    return b"%x\r\n%s\r\n" % (len(chunk), chunk)


FRAMED_HEARTBEAT: Final = framed(HEARTBEAT)


class LiveEvent(msgspec.Struct, frozen=True):
    """An event as fanned out: the envelope, the countries it touches, its SSE message."""

    event: RecordedEvent
    countries: tuple[str, ...]
    frame: bytes


_encoder = msgspec.json.Encoder()


class StreamEvent(RecordedEvent, frozen=True):
    """An event as a stream sends it: as the log holds it, and where its data's schema is."""

    dataschema: str


def sse_frame(event: RecordedEvent) -> bytes:
    """The SSE message of an event (built once, sent to every client)."""
    schema = dataschema(event.type, event.schema_version)
    data = _encoder.encode(StreamEvent(**msgspec.structs.asdict(event), dataschema=schema))
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
    for row in rows:
        event = recorded(row)
        live.append(LiveEvent(event, tuple(row[10]), sse_frame(event)))
    return live


class LiveBatch:
    """Events fanned out together, with their SSE messages joined once for every subscriber."""

    __slots__ = ("chunk", "events", "first", "framed", "last", "sent_at")

    def __init__(self, events: list[LiveEvent], sent_at: float = 0.0) -> None:
        self.events = events
        self.chunk = b"".join(live.frame for live in events)
        self.first, self.last = events[0].event.position, events[-1].event.position
        # What the fan-out hands to direct writes: `chunk` framed as a chunk of an HTTP/1.1
        # body once for every subscriber, and the loop's time as it does.
        self.framed: bytes | None = None
        self.sent_at = sent_at


class Follower:
    """An event-stream client: where it is in the log, what it wants, how its messages leave.

    While `direct` is set the fan-out hands it the subscriber's messages itself: at a
    thousand subscribers, waking a task per subscriber per event cost more than the
    sends. With the messages comes their HTTP chunk when it is the batch's own, framed
    once for all who take the whole batch. Otherwise the batches are kept for the
    subscriber's own task; past QUEUE_BATCHES it is behind and catches up from the
    database on its own.
    """

    def __init__(self, after: int, filters: LogFilter, heartbeat: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.scanned, self._filters = after, filters
        self._everything = not (filters.types or filters.countries)
        self._kept: list[LiveBatch] = []
        self.behind = False
        self.direct: Callable[[bytes, bytes | None], None] | None = None
        self._heartbeat, self._due = heartbeat, self._loop.time() + heartbeat
        self._waiter: asyncio.Future[None] | None = None
        self._timer = self._loop.call_at(self._due, self._on_timer)

    def offer(self, batch: LiveBatch) -> None:
        """Hand the batch's messages to `direct`, or keep the batch for the subscriber."""
        if self.behind:
            return
        if self.direct is not None:
            # Inline for whoever takes every event: it runs once per client per batch.
            if self._everything and batch.first > self.scanned:
                self.scanned, self._due = batch.last, batch.sent_at + self._heartbeat
                self.direct(batch.chunk, batch.framed)
                return
            chunk = self.messages(batch)
            if chunk:
                self._due = batch.sent_at + self._heartbeat
                self.direct(chunk, batch.framed if chunk is batch.chunk else None)
            return
        if len(self._kept) < QUEUE_BATCHES:
            self._kept.append(batch)
        else:
            self.behind = True
        self.wake()

    def messages(self, batch: LiveBatch) -> bytes:
        """The batch's messages past `scanned` that the subscriber wants; moves `scanned`."""
        if batch.last <= self.scanned:
            return b""
        if self._everything and batch.first > self.scanned:
            chunk = batch.chunk
        else:
            chunk = b"".join(
                live.frame
                for live in batch.events
                if live.event.position > self.scanned and matches(live, self._filters)
            )
        self.scanned = batch.last
        return chunk

    def kept(self) -> bytes:
        """The messages of the kept batches, else a heartbeat when one is due, else b""."""
        batches, self._kept = self._kept, []
        chunk = b"".join([self.messages(batch) for batch in batches])
        if not chunk and self._loop.time() >= self._due:
            chunk = HEARTBEAT
        if chunk:
            self._due = self._loop.time() + self._heartbeat
        return chunk

    async def next(self) -> bytes:
        """What to send next, once there is something; b"" when the subscriber is behind."""
        while not self.behind:
            chunk = self.kept()
            if chunk:
                return chunk
            await self.wait()
        return b""

    async def wait(self) -> None:
        """Until a batch is kept, the subscriber falls behind, a heartbeat is due or `wake()`."""
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        """End the subscriber's `wait()`."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def restart(self) -> None:
        """Forget the kept batches: the subscriber reads the database from `scanned`."""
        self.behind, self._kept = False, []

    def close(self) -> None:
        """Stop the heartbeat timer."""
        self._timer.cancel()

    def _on_timer(self) -> None:
        # Messages do not move the timer (one timer per message would cost more than
        # the message); it moves itself.
        now = self._loop.time()
        if now >= self._due:
            if self.direct is not None:
                self._due = now + self._heartbeat
                self.direct(HEARTBEAT, FRAMED_HEARTBEAT)
            else:
                self.wake()
        due = self._due if self._due > now else now + self._heartbeat
        self._timer = self._loop.call_at(due, self._on_timer)


def _fanned(events: list[LiveEvent]) -> LiveBatch:
    """A batch as the fan-out hands it out: framed and timed once for every follower."""
    batch = LiveBatch(events, asyncio.get_running_loop().time())
    batch.framed = framed(batch.chunk)
    return batch


class Fanout:
    """Follows the log for every live subscriber of this process."""

    def __init__(self, pool: asyncpg.Pool[Any], doorbell: Bell) -> None:
        self._pool, self._doorbell = pool, doorbell
        self._followers: set[Follower] = set()
        self._task: asyncio.Task[None] | None = None
        self.head = 0
        self._head_read_at = -HEAD_INTERVAL

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
        return len(self._followers)

    @contextlib.contextmanager
    def subscribe(self, after: int, filters: LogFilter, heartbeat: float) -> Iterator[Follower]:
        """A follower from `after` for the duration of the `with` block."""
        follower = Follower(after, filters, heartbeat)
        self._followers.add(follower)
        try:
            yield follower
        finally:
            self._followers.discard(follower)
            follower.close()

    async def _run(self) -> None:
        while True:
            try:
                rung = await self._deliver_new()
            except (OSError, Exception) as exc:  # keep following; readers catch up by position
                log.warning("fan-out read failed (%s); retrying", exc)
                await asyncio.sleep(POLL_INTERVAL)
                continue
            if self._doorbell.rings == rung:  # else the log grew after the last read began
                await self._doorbell.wait(POLL_INTERVAL)

    async def _deliver_new(self) -> int:
        """Offer every new event; the doorbell's ring count as the last read began."""
        rung = self._doorbell.rings
        while self._followers:
            rung = self._doorbell.rings
            batch = await self._read(self.head)
            if batch is None:
                return rung
            self.head = batch.last
            await self._offer(batch, rung)
        if time.monotonic() - self._head_read_at >= HEAD_INTERVAL:
            await self._read_head()
        return rung

    async def _read(self, after: int) -> LiveBatch | None:
        async with self._pool.acquire() as conn:
            events = await read_live(conn, after, PAGE)
        return _fanned(events) if events else None

    async def _offer(self, batch: LiveBatch, rung: int) -> None:
        """Offer the batch to every follower, SLICE at a time with the loop's other work
        between; the followers not yet reached get what was appended since with it (once
        the doorbell has rung past `rung`, its count as the batch's read began).

        A write per follower costs ~10 us, most of it the kernel's: at thousands of
        followers, one pass without a break would hold every request (appends too)
        for tens of milliseconds, and each new event would wait for a pass of its own.
        """
        followers = list(self._followers)
        for start in range(0, len(followers), SLICE):
            if start:
                await asyncio.sleep(0)
                if self._doorbell.rings != rung and len(batch.events) < PAGE:
                    rung = self._doorbell.rings
                    batch = await self._joined(batch)
            for follower in followers[start : start + SLICE]:
                follower.offer(batch)

    async def _joined(self, batch: LiveBatch) -> LiveBatch:
        # The head stays where it was: the next read gives the followers already
        # passed what is joined here, and those offered it skip it by position.
        more = await self._read(batch.last)
        if more is None:
            return batch
        return _fanned([*batch.events, *more.events][:PAGE])

    async def _read_head(self) -> None:
        # Nobody listens: keep the head near the log's end, so that the next
        # subscriber's first read is short. From the table, never from a NOTIFY
        # payload (anyone may send one), and at most once an interval under load.
        self._head_read_at = time.monotonic()
        async with self._pool.acquire() as conn:
            head = await head_position(conn)
        # A subscriber that arrived meanwhile may need what lies past the head read here.
        if not self._followers:
            self.head = max(self.head, head)
