"""GET /v1/events/stream: the log as Server-Sent Events, caught up, then live.

Litestar parses, validates and authorizes the request, and starts the response; the
body is sent here, most of it by the fan-out itself (see `Subscription.direct`).
"""

from __future__ import annotations

import functools
import types
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Annotated, Any, Final

import anyio
from litestar import get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send

from service.http.rate_limits import client_address
from service.http.routes.events import _split, log_filter
from service.http.runtime import Runtime
from service.log.store import LogFilter
from service.subscribers.fanout import Batch, Subscription, read_live
from service.subscribers.stream_limits import Stalled, StreamSlots, abort_of, refuse, within

CONNECTED: Final = b": connected\n\n"
CATCH_UP_PAGE: Final = 100
EVENT_STREAM: Final = "text/event-stream"
Follow = Callable[[Send], Coroutine[Any, Any, None]]


async def _unread(runtime: Runtime, subscription: Subscription) -> bytes | None:
    """The messages of the next page past the subscriber's position; None past the log's end.

    A page at a time, sent before the next is read: a client that does not read holds
    one page's messages, not the log's.
    """
    async with runtime.pool.acquire() as conn:
        page = await read_live(conn, subscription.scanned, CATCH_UP_PAGE)
    return subscription.messages(Batch(page)) if page else None


async def event_stream(
    runtime: Runtime, after: int, filters: LogFilter, heartbeat: float
) -> AsyncGenerator[bytes, None]:
    """The stream's messages, for a reader that pulls them (no direct sends, no stall limit)."""
    yield CONNECTED
    with runtime.fanout.subscribe(after, filters, heartbeat) as subscription:
        while True:
            # Restart before reading the database: whatever arrives meanwhile is kept,
            # and anything the database already gave is skipped by position.
            subscription.restart()
            while (chunk := await _unread(runtime, subscription)) is not None:
                if chunk:
                    yield chunk
            while chunk := await subscription.next():
                yield chunk


def _body(chunk: bytes) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


async def _follow(runtime: Runtime, after: int, filters: LogFilter, send: Send) -> None:
    """Send the stream's body: catch up from the database, then live, again when behind.

    Raises Stalled when the client has not taken a send within the stall time.
    """
    stall = runtime.settings.stream_stall_seconds
    await within(stall, send(_body(CONNECTED)))
    heartbeat = runtime.settings.sse_heartbeat_seconds
    with runtime.fanout.subscribe(after, filters, heartbeat) as subscription:
        while True:
            subscription.restart()  # as in event_stream
            while (chunk := await _unread(runtime, subscription)) is not None:
                if chunk:
                    await within(stall, send(_body(chunk)))
            await _live(subscription, send, stall)


async def _live(subscription: Subscription, send: Send, stall: float) -> None:
    """Until the subscriber falls behind, the fan-out sends to it directly; this task
    sends what was kept for it, and finishes the sends that had to wait for the client."""
    direct = _Direct(subscription, send)
    while not subscription.behind:
        chunk = subscription.kept()
        if chunk:
            await within(stall, send(_body(chunk)))
            continue
        subscription.direct = direct  # nothing is kept, so nothing goes out of order
        try:
            await subscription.wait()
        finally:
            subscription.direct = None
        await within(stall, direct.finish())


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
    """Litestar's response start, then a body that `follow` sends until the client leaves;
    a problem instead when the process has as many streams open as it takes."""

    __slots__ = ("_abort", "follow", "slots")
    _should_set_content_length = False

    def __init__(self, follow: Follow, slots: StreamSlots, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.follow, self.slots = follow, slots
        self._abort: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse past the caps; else stream, holding a slot until the client has left."""
        address = client_address(scope)
        refusal = self.slots.take(address)
        if refusal is not None:
            await refuse(send, refusal)
            return
        try:
            self._abort = abort_of(scope)
            await super().__call__(scope, receive, send)
        finally:
            self.slots.release(address)

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Follow until the client disconnects (or following fails)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._follow, send, group.cancel_scope)
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

    async def _follow(self, send: Send, following: anyio.CancelScope) -> None:
        try:
            await self.follow(send)
        except Stalled:
            if self._abort is None:
                following.cancel()  # the server closes the connection once the app returns
            else:
                # Closing would wait to flush what the client does not read; an abort
                # frees its buffers now, and the server reports the disconnect.
                self._abort()


class EventStream(Stream):
    """A Stream (to Litestar and the OpenAPI document) whose body `follow` sends."""

    __slots__ = ("follow", "slots")

    def __init__(self, follow: Follow, slots: StreamSlots, headers: dict[str, str]) -> None:
        super().__init__((), media_type=EVENT_STREAM, headers=headers)
        self.follow, self.slots = follow, slots

    def to_asgi_response(self, *_: Any, **given: Any) -> ASGIResponse:
        """The response with the handler's headers over the route's, as Stream does."""
        return _FollowedResponse(
            self.follow,
            self.slots,
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
    opt={"problems": (422, 429, 503), "scope": "read"},
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
    """`id:` is the position, `event:` the type, `data:` the event; a comment every 15 s.

    Past the server's stream caps (in all, or from one address) a new stream is refused
    with 503 or 429 and Retry-After; a client that reads nothing for
    LEGATION_STREAM_STALL_SECONDS while events wait for it is disconnected (it resumes
    with Last-Event-ID).
    """
    filters = log_filter(_split(event_type), _split(country))
    resume = _last_event_id(last_event_id)
    start = resume if resume is not None else after
    return EventStream(
        functools.partial(_follow, runtime, start, filters),
        runtime.streams,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [stream_events]
