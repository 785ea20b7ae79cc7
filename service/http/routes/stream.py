"""GET /v1/events/stream: the log as Server-Sent Events, caught up, then live.

Litestar parses, validates and authorizes the request, and starts the response; the
body is what service/subscribers/event_stream.py sends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

import anyio
from litestar import get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from service.config import Settings
from service.http.edge import asked_head
from service.http.rate_limits import client_address
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.events import _split, log_filter
from service.http.stream_limits import (
    StreamSlots,
    abort_of,
    chunk_writer,
    refuse,
    server_cycle,
)
from service.subscribers.event_stream import Stalled, WriteChunk, follow
from service.subscribers.fanout import Fanout

EVENT_STREAM: Final = "text/event-stream"
Follow = Callable[[Send, WriteChunk | None], Coroutine[Any, Any, None]]


class _FollowedResponse(ASGIResponse):
    """Litestar's response start, then a body that `follow` sends until the client leaves;
    a problem instead when the process has as many streams open as it takes."""

    __slots__ = ("_abort", "_write", "follow", "slots")
    _should_set_content_length = False

    def __init__(self, follow: Follow, slots: StreamSlots, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.follow, self.slots = follow, slots
        self._abort: Callable[[], None] | None = None
        self._write: WriteChunk | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse past the caps; else stream, holding a slot until the client has left."""
        address = client_address(scope)
        refusal = self.slots.take(address)
        if refusal is not None:
            await refuse(send, refusal)
            return
        if asked_head(scope):
            # The GET's start and no body: the slot was only a check, nothing is followed.
            self.slots.release(address)
            self.is_head_response = True
            await super().__call__(scope, receive, send)
            return
        try:
            cycle = server_cycle(scope, receive)
            self._abort = abort_of(cycle)
            writer = chunk_writer(scope, cycle)
            self._write = writer.write if writer is not None else None
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
            await self.follow(send, self._write)
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


# Checked by the authorizer (service/http/auth.py) before the route runs; declared here
# so that the OpenAPI document names it.
StreamTokenParam = Annotated[
    str | None,
    QueryParameter(
        name="token",
        max_length=512,
        description="A stream token (POST /v1/stream-tokens), for clients that cannot send "
        "Authorization; needed only where reads need a key",
    ),
]
STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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
    operation_id="streamEvents",
    media_type=EVENT_STREAM,
    opt=route_meta(
        problems=(401, 403, 422, 429, 503),
        scope="read",
        headers=("Cache-Control", "X-Accel-Buffering"),
        stream_token=True,
    ),
)
async def stream_events(
    pool: NamedDependency[Pool],
    fanout: NamedDependency[Fanout],
    settings: NamedDependency[Settings],
    streams: NamedDependency[StreamSlots],
    after: Annotated[int, Parameter(ge=0, le=2**62, description="Start after this position")] = 0,
    event_type: Annotated[
        list[str] | None, QueryParameter(name="type", max_items=20, description="Event types")
    ] = None,
    country: Annotated[list[str] | None, QueryParameter(max_items=20)] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(name="Last-Event-ID", max_length=20, description="Resume after this id"),
    ] = None,
    token: StreamTokenParam = None,
) -> Stream:
    """`id:` is the position, `event:` the type, `data:` the event (a StreamEvent: as
    /v1/events lists it, with `dataschema`, where its data's JSON Schema is); a comment every
    15 s.

    A `retry:` line comes first (how soon a dropped EventSource reconnects). Where reads
    need a key, a browser passes a stream token (`POST /v1/stream-tokens`) as `token`.

    Past the server's stream caps (in all, or from one address) a new stream is refused
    with 503 or 429 and Retry-After; a client that reads nothing for
    LEGATION_STREAM_STALL_SECONDS while events wait for it is disconnected (it resumes
    with Last-Event-ID).
    """
    filters = log_filter(_split(event_type), _split(country))
    resume = _last_event_id(last_event_id)
    start = resume if resume is not None else after
    return EventStream(
        functools.partial(follow, pool, fanout, settings, start, filters),
        streams,
        headers=STREAM_HEADERS,
    )


ROUTES = [stream_events]
