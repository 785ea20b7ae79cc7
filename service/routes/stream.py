"""GET /v1/events/stream: the log as Server-Sent Events, caught up, then live.

Litestar parses, validates and authorizes the request, and starts the response; the
body is sent here, most of it by the fan-out itself (see `Subscription.direct`).
"""

from __future__ import annotations

import functools
import types
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import Annotated, Any, Final

import anyio
from litestar import get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Send

from service.fanout import PAGE, Batch, LiveEvent, Subscription, matches, read_live
from service.routes.events import _split, log_filter
from service.runtime import Runtime
from service.store import LogFilter

CONNECTED: Final = b": connected\n\n"
EVENT_STREAM: Final = "text/event-stream"
Follow = Callable[[Send], Coroutine[Any, Any, None]]


async def _unread(runtime: Runtime, subscription: Subscription) -> AsyncIterator[list[LiveEvent]]:
    """Everything past the subscriber's position the database holds, a page at a time."""
    # Restart before reading the database: whatever arrives meanwhile is kept, and
    # anything the database already gave is skipped by position.
    subscription.restart()
    after = subscription.scanned
    while True:
        async with runtime.pool.acquire() as conn:
            page = await read_live(conn, after, PAGE)
        if not page:
            return
        yield page
        after = page[-1].event.position


async def event_stream(
    runtime: Runtime, after: int, filters: LogFilter, heartbeat: float
) -> AsyncGenerator[bytes, None]:
    """The stream's messages one at a time, for a reader that pulls them (no direct sends)."""
    yield CONNECTED
    with runtime.fanout.subscribe(after, filters, heartbeat) as subscription:
        while True:
            async for page in _unread(runtime, subscription):
                for live in page:
                    subscription.scanned = live.event.position
                    if matches(live, filters):
                        yield live.frame
            while chunk := await subscription.next():
                yield chunk


def _body(chunk: bytes) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


async def _follow(runtime: Runtime, after: int, filters: LogFilter, send: Send) -> None:
    """Send the stream's body: catch up from the database, then live, again when behind."""
    await send(_body(CONNECTED))
    heartbeat = runtime.settings.sse_heartbeat_seconds
    with runtime.fanout.subscribe(after, filters, heartbeat) as subscription:
        while True:
            async for page in _unread(runtime, subscription):
                chunk = subscription.messages(Batch(page))
                if chunk:
                    await send(_body(chunk))
            await _live(subscription, send)


async def _live(subscription: Subscription, send: Send) -> None:
    """Until the subscriber falls behind, the fan-out sends to it directly; this task
    sends what was kept for it, and finishes the sends that had to wait for the client."""
    direct = _Direct(subscription, send)
    while not subscription.behind:
        chunk = subscription.kept()
        if chunk:
            await send(_body(chunk))
            continue
        subscription.direct = direct  # nothing is kept, so nothing goes out of order
        try:
            await subscription.wait()
        finally:
            subscription.direct = None
        await direct.finish()


class _Direct:
    """Sends a subscriber's messages from the fan-out's task while its client keeps up."""

    def __init__(self, subscription: Subscription, send: Send) -> None:
        self._subscription, self._send = subscription, send
        self._rest: Awaitable[None] | None = None

    def __call__(self, chunk: bytes) -> None:
        rest = _send_now(self._send, _body(chunk))
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


class _FollowedResponse(ASGIResponse):
    """Litestar's response start, then a body that `follow` sends until the client leaves."""

    __slots__ = ("follow",)
    _should_set_content_length = False

    def __init__(self, follow: Follow, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.follow = follow

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Follow until the client disconnects (or following fails)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.follow, send)
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()


class EventStream(Stream):
    """A Stream (to Litestar and the OpenAPI document) whose body `follow` sends."""

    __slots__ = ("follow",)

    def __init__(self, follow: Follow, headers: dict[str, str]) -> None:
        super().__init__((), media_type=EVENT_STREAM, headers=headers)
        self.follow = follow

    def to_asgi_response(self, *_: Any, **given: Any) -> ASGIResponse:
        """The response with the handler's headers over the route's, as Stream does."""
        return _FollowedResponse(
            self.follow,
            background=self.background or given.get("background"),
            cookies=[*self.cookies, *(given.get("cookies") or ())],
            headers={**(given.get("headers") or {}), **self.headers},
            is_head_response=given.get("is_head_response", False),
            media_type=EVENT_STREAM,
            status_code=self.status_code or given.get("status_code"),
        )


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
    media_type=EVENT_STREAM,
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
    return EventStream(
        functools.partial(_follow, runtime, start, filters),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [stream_events]
