"""GET /v1/events/stream: the log as Server-Sent Events, caught up, then live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Final

from litestar import get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream

from service.fanout import PAGE, Subscription, matches, read_live
from service.routes.events import _split, log_filter
from service.runtime import Runtime
from service.store import LogFilter

HEARTBEAT: Final = b": heartbeat\n\n"


async def _from_database(
    runtime: Runtime, scanned: int, filters: LogFilter
) -> AsyncIterator[tuple[int, bytes | None]]:
    """Everything after `scanned` the database holds: (position read, frame or None)."""
    while True:
        async with runtime.pool.acquire() as conn:
            page = await read_live(conn, scanned, PAGE)
        if not page:
            return
        for live in page:
            scanned = live.event.position
            yield (
                scanned,
                live.frame if matches(live, filters) else None,
            )


def _drain(subscription: Subscription) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            subscription.queue.get_nowait()


async def event_stream(
    runtime: Runtime, after: int, filters: LogFilter, heartbeat: float
) -> AsyncGenerator[bytes, None]:
    """Catch up from the database, then follow the fan-out; catch up again if left behind."""
    scanned = after
    yield b": connected\n\n"
    with runtime.fanout.subscribe() as subscription:
        while True:
            # Reset before reading the database: whatever arrives meanwhile queues up,
            # and anything the database already gave is skipped by position.
            subscription.behind = False
            _drain(subscription)
            start = scanned
            async for position, message in _from_database(runtime, start, filters):
                scanned = position
                if message is not None:
                    yield message
            while not subscription.behind:
                try:
                    batch = await asyncio.wait_for(subscription.queue.get(), heartbeat)
                except TimeoutError:
                    yield HEARTBEAT
                    continue
                # One write per batch, not per event: with many clients the cost
                # is in the sends.
                fresh = [live for live in batch if live.event.position > scanned]
                if fresh:
                    scanned = fresh[-1].event.position
                    chunk = b"".join(live.frame for live in fresh if matches(live, filters))
                    if chunk:
                        yield chunk


def _last_event_id(value: str | None) -> int | None:
    # Anything but a position this API sent is ignored, as EventSource expects.
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


@get(
    "/v1/events/stream",
    tags=["log"],
    summary="Follow the log as Server-Sent Events",
    media_type="text/event-stream",
    opt={"problems": (422,), "scope": "read"},
)
async def stream_events(
    runtime: NamedDependency[Runtime],
    after: Annotated[int, Parameter(ge=0, le=2**62, description="Start after this position")] = 0,
    event_type: Annotated[
        list[str] | None, QueryParameter(name="type", max_items=20, description="Event types")
    ] = None,
    country: Annotated[list[str] | None, QueryParameter(max_items=20)] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(name="Last-Event-ID", max_length=20, description="Resume after this id"),
    ] = None,
) -> Stream:
    """`id:` is the position, `event:` the type, `data:` the event; a comment every 15 s."""
    filters = log_filter(_split(event_type), _split(country))
    resume = _last_event_id(last_event_id)
    start = resume if resume is not None else after
    heartbeat = runtime.settings.sse_heartbeat_seconds
    return Stream(
        event_stream(runtime, start, filters, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [stream_events]
