"""The body of an event stream: caught up from the database, then live from the fan-out.

Most live messages are sent by the fan-out's own task (see `Follower.direct`);
a client that reads slower than the log grows falls back to its own task, and one
that stops reading is dropped after the stall time (it resumes with Last-Event-ID).
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, Final

import asyncpg
from litestar.types import HTTPResponseBodyEvent, Send

from service.config import Settings
from service.log.store import LogFilter
from service.subscribers.fanout import Fanout, Follower, LiveBatch, framed, read_live

# How long a disconnected EventSource waits before it reconnects (SSE's `retry:` field),
# sent first: a reconnection then comes soon, and resumes with Last-Event-ID.
RETRY_MILLISECONDS: Final = 2000
CONNECTED: Final = b"retry: %d\n\n: connected\n\n" % RETRY_MILLISECONDS
# Writes a framed body chunk (see fanout.framed) at once, or declines (False): the
# server's own write, past the ASGI layers (service/http/stream_limits.py).
WriteChunk = Callable[[bytes], bool]


class Stalled(Exception):
    """The client read nothing for the stall time while a send waited for it."""


async def within(seconds: float, sending: Awaitable[None]) -> None:
    """Await a send; Stalled when the client has not taken it within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            await sending
    except TimeoutError:
        raise Stalled from None


CATCH_UP_PAGE: Final = 100


async def _unread(pool: asyncpg.Pool[Any], follower: Follower) -> bytes | None:
    """The messages of the next page past the subscriber's position; None past the log's end.

    A page at a time, sent before the next is read: a client that does not read holds
    one page's messages, not the log's.
    """
    async with pool.acquire() as conn:
        page = await read_live(conn, follower.scanned, CATCH_UP_PAGE)
    return follower.messages(LiveBatch(page)) if page else None


async def event_stream(
    pool: asyncpg.Pool[Any], fanout: Fanout, after: int, filters: LogFilter, heartbeat: float
) -> AsyncGenerator[bytes, None]:
    """The stream's messages, for a reader that pulls them (no direct sends, no stall limit)."""
    yield CONNECTED
    with fanout.subscribe(after, filters, heartbeat) as follower:
        while True:
            # Restart before reading the database: whatever arrives meanwhile is kept,
            # and anything the database already gave is skipped by position.
            follower.restart()
            while (chunk := await _unread(pool, follower)) is not None:
                if chunk:
                    yield chunk
            while chunk := await follower.next():
                yield chunk


def body(chunk: bytes) -> HTTPResponseBodyEvent:
    """An ASGI body message of the stream (more follow)."""
    return {"type": "http.response.body", "body": chunk, "more_body": True}


async def follow(
    pool: asyncpg.Pool[Any],
    fanout: Fanout,
    settings: Settings,
    after: int,
    filters: LogFilter,
    send: Send,
    write: WriteChunk | None = None,
) -> None:
    """Send the stream's body: catch up from the database, then live, again when behind.

    The fan-out writes live messages with `write` where there is one (else `send`).
    Raises Stalled when the client has not taken a send within the stall time.
    """
    stall = settings.stream_stall_seconds
    await within(stall, send(body(CONNECTED)))
    heartbeat = settings.sse_heartbeat_seconds
    with fanout.subscribe(after, filters, heartbeat) as follower:
        while True:
            follower.restart()  # as in event_stream
            while (chunk := await _unread(pool, follower)) is not None:
                if chunk:
                    await within(stall, send(body(chunk)))
            await _live(follower, send, write, stall)


async def _live(follower: Follower, send: Send, write: WriteChunk | None, stall: float) -> None:
    """Until the subscriber falls behind, the fan-out sends to it directly; this task
    sends what was kept for it, and finishes the sends that had to wait for the client."""
    direct = _Direct(follower, send, write)
    while not follower.behind:
        chunk = follower.kept()
        if chunk:
            await within(stall, send(body(chunk)))
            continue
        follower.direct = direct  # nothing is kept, so nothing goes out of order
        try:
            await follower.wait()
        finally:
            follower.direct = None
        await within(stall, direct.finish())


class _Direct:
    """Sends a subscriber's messages from the fan-out's task while its client keeps up."""

    def __init__(self, follower: Follower, send: Send, write: WriteChunk | None) -> None:
        self._subscription, self._send, self._write = follower, send, write
        self._rest: Awaitable[None] | None = None

    def __call__(self, chunk: bytes, chunk_framed: bytes | None) -> None:
        if self._write is not None and self._write(chunk_framed or framed(chunk)):
            return
        rest = _send_now(self._send, body(chunk))
        if rest is not None:
            # The client is slow: keep its batches until its own task has finished this.
            self._rest, self._subscription.direct = rest, None
            self._subscription.wake()

    async def finish(self) -> None:
        """Wait for the send the fan-out started and could not finish."""
        rest, self._rest = self._rest, None
        if rest is not None:
            await rest


def _send_now(send: Send, message: HTTPResponseBodyEvent) -> Awaitable[None] | None:
    """Run a send as far as it goes without waiting: None when it is done, else the rest.

    The fan-out must never wait for one client; a send waits only when its client
    reads slower than it is written to, and then the client's own task awaits the rest.
    """
    sending = send(message)
    if not isinstance(sending, types.CoroutineType):
        return sending
    try:
        waiting = sending.send(None)
    except StopIteration:
        return None
    except Exception as exc:  # raised in the subscriber's task, which it ends
        return _raise(exc)
    return _rest(sending, waiting)


async def _raise(exc: Exception) -> None:
    raise exc


@types.coroutine
def _rest(sending: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """`yield from` for a coroutine already started: `await` refuses one that is waiting."""
    while True:
        try:
            step = functools.partial(sending.send, (yield waiting))
        except GeneratorExit:
            sending.close()
            raise
        except BaseException as exc:  # the awaiting task's cancellation reaches the send
            step = functools.partial(sending.throw, exc)
        try:
            waiting = step()
        except StopIteration:
            return
