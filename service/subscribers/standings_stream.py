"""The body of a standings stream: each standing an event changed, as Server-Sent Events.

A position is sent only once the read models include it (its standings can then be
read with min_position at once), caught up from `after`, then live as the projector
moves. Each message is `id: <position>/<code>` (a reconnecting EventSource resumes
after it, within a position that changed several standings), `event:
legation.standing.changed` and `data:` the notification. The changes of a position
are computed once per process (StandingChanges), whoever asks; each client reads
the log's pages itself, as an event-stream client catching up does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
import msgspec
from litestar.types import Send

from service.config import Settings
from service.projections.standing_changes import StandingChange, StandingChanges
from service.subscribers.cloud_events import STANDING_CHANGED, standing_changed
from service.subscribers.event_stream import CATCH_UP_PAGE, CONNECTED, WriteChunk, body, within
from service.subscribers.fanout import HEARTBEAT, LiveEvent, read_live

_encoder = msgspec.json.Encoder()
_EVENT: Final = STANDING_CHANGED.encode()


class Resume(msgspec.Struct, frozen=True):
    """Where a standings stream starts: after `position`, or within it after `country`."""

    position: int
    country: str | None = None


def resume_from(last_event_id: str | None) -> Resume | None:
    """A `Last-Event-ID` this stream sent (`<position>/<code>`, or a position); None else."""
    text = (last_event_id or "").strip()
    position, _, country = text.partition("/")
    if not (position.isascii() and position.isdigit()) or len(position) > 18:
        return None
    if country and not (country.isascii() and country.isalpha() and len(country) <= 4):
        return None
    return Resume(int(position), country.upper() or None)


def frame(live: LiveEvent, change: StandingChange) -> bytes:
    """The SSE message of one standing change."""
    data = _encoder.encode(standing_changed(live, change))
    ident = b"%d/%s" % (live.event.position, change.country.encode())
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (ident, _EVENT, data)


class Projected:
    """How far the read models are, and waiting for them to move (the app's projector)."""

    def __init__(
        self, position: Callable[[], int], advanced: Callable[[float], Awaitable[bool]]
    ) -> None:
        self.position, self.advanced = position, advanced


async def follow_standings(
    pool: asyncpg.Pool[Any],
    changes: StandingChanges,
    projected: Projected,
    settings: Settings,
    start: Resume,
    countries: tuple[str, ...],
    send: Send,
    _write: WriteChunk | None = None,
) -> None:
    """Send the stream's body until the client leaves; Stalled when it stops reading.

    Every message goes through `send` from this client's own task: its frames are its
    own (filtered, read after the projector), so the server's direct write, which the
    event stream's fan-out shares among its clients, would save little here.
    """
    stall, heartbeat = settings.stream_stall_seconds, settings.sse_heartbeat_seconds
    await within(stall, send(body(CONNECTED)))
    # Within a resumed position, the codes up to the last one sent are done.
    scanned = start.position - 1 if start.country else start.position
    done: Resume | None = start if start.country else None
    loop = asyncio.get_running_loop()
    sent = loop.time()
    while True:
        while (page := await _page(pool, scanned, projected.position())) is not None:
            chunk = await _frames(pool, changes, page, countries, done)
            scanned, done = page[-1].event.position, None
            if chunk:
                await within(stall, send(body(chunk)))
                sent = loop.time()
        # The standings may move often with nothing for this client: it still hears
        # something every `heartbeat`, or a proxy between might close the connection.
        moved = await projected.advanced(max(0.0, sent + heartbeat - loop.time()))
        if not moved and loop.time() >= sent + heartbeat:
            await within(stall, send(body(HEARTBEAT)))
            sent = loop.time()


async def _page(pool: asyncpg.Pool[Any], scanned: int, upto: int) -> list[LiveEvent] | None:
    if scanned >= upto:
        return None
    async with pool.acquire() as conn:
        page = await read_live(conn, scanned, CATCH_UP_PAGE)
    return [live for live in page if live.event.position <= upto] or None


async def _frames(
    pool: asyncpg.Pool[Any],
    changes: StandingChanges,
    page: list[LiveEvent],
    countries: tuple[str, ...],
    done: Resume | None,
) -> bytes:
    frames = []
    async with pool.acquire() as conn:
        for live in page:
            position = live.event.position
            for change in await changes.at(conn, position):
                if countries and change.country not in countries:
                    continue
                if done and done.position == position and change.country <= (done.country or ""):
                    continue
                frames.append(frame(live, change))
    await asyncio.sleep(0)  # a long catch-up lets the other clients' tasks run
    return b"".join(frames)
