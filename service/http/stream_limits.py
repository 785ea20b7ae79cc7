"""How many event-stream clients a process serves, and how long one may keep from reading.

Every open stream holds a socket, its buffers and a task: past `max_streams` in all or
`max_streams_per_address` from one client address (the address the rate limits count
by, forwarded only by a trusted proxy) a new one is refused. A client that reads
nothing while the server has something to send is dropped after
`stream_stall_seconds` (service/subscribers/event_stream.py raises Stalled), at once
where the server can abort the connection; it resumes with Last-Event-ID. `legation
serve` raises its open-file limit to the hard limit at start-up, for the sockets.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any, Final, cast

import msgspec
from litestar.types import HTTPResponseStartEvent, Receive, Scope, Send

from service.http.problems import PROBLEM_JSON, Problem, Unavailable
from service.http.rate_limits import TooManyRequests

RETRY_AFTER: Final = 10  # seconds; a slot frees when any client leaves
SERVER_SEND: Final = "legation_server_send"  # the scope key of the server's own send
_encoder = msgspec.json.Encoder()


class StreamSlots:
    """Counts the open streams, in all and per client address."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total, self.per_address = total, per_address
        self.open = 0
        self._by_address: dict[str, int] = {}

    def take(self, address: str) -> Problem | None:
        """Count a new stream from `address`; the refusal instead when a cap is reached."""
        if self._by_address.get(address, 0) >= self.per_address:
            return TooManyRequests(
                f"at most {self.per_address} event streams from one address; close one first",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        if self.open >= self.total:
            return Unavailable(
                f"this server has its {self.total} event streams open; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        self.open += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return None

    def release(self, address: str) -> None:
        """A stream from `address` has ended."""
        self.open -= 1
        left = self._by_address.pop(address) - 1
        if left:
            self._by_address[address] = left


async def refuse(send: Send, problem: Problem) -> None:
    """Answer with the problem instead of a stream."""
    body = _encoder.encode(problem.body())
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": problem.status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in problem.headers.items()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def server_cycle(scope: Scope, receive: Receive) -> Any | None:
    """The server's own object for this request, where it is uvicorn's request cycle.

    Under uvicorn, `receive` and `send` are methods of the request cycle, which holds
    the connection's transport. Litestar wraps `send` (even the one the edge keeps in
    the scope), but not `receive`. Looked up only for streams, not per request: a
    wrapper around every request cost the fastest reads ~7 %.
    """
    for given in (receive, cast(dict[str, Any], scope).get(SERVER_SEND)):
        cycle = getattr(given, "__self__", None)
        if hasattr(cycle, "transport"):
            return cycle
    return None


def abort_of(cycle: Any | None) -> Callable[[], None] | None:
    """What drops the request's connection at once, where the server offers it (a close
    waits until a client that does not read has taken the buffered bytes)."""
    transport = getattr(cycle, "transport", None)
    abort: Callable[[], None] | None = getattr(transport, "abort", None)
    return abort


class ChunkWriter:
    """Writes an event stream's body chunks straight to the server's transport.

    What uvicorn's `send` would do for a chunk of a started chunked body, without the
    coroutines of the ASGI layers in between (none of which touches a body chunk of a
    stream): at thousands of clients those were a third of the fan-out's time.
    `write` declines (False) whenever `send` would not write at once, so that the
    caller takes the ASGI path and its waiting.
    """

    __slots__ = ("_cycle", "_write")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._write: Callable[[bytes], None] = cycle.transport.write

    def write(self, framed: bytes) -> bool:
        """Write a chunk framed for a chunked body (as uvicorn frames it); whether it was."""
        cycle = self._cycle
        if (
            cycle.flow.write_paused
            or cycle.disconnected
            or cycle.response_complete
            or cycle.chunked_encoding is not True
        ):
            return False
        self._write(framed)
        return True


def chunk_writer(scope: Scope, cycle: Any | None) -> ChunkWriter | None:
    """The request's ChunkWriter where the server is uvicorn with httptools, whose request
    cycle it knows; else None."""
    known = ("transport", "flow", "disconnected", "response_complete", "chunked_encoding")
    if scope.get("method") != "GET" or not all(hasattr(cycle, name) for name in known):
        return None
    return ChunkWriter(cycle)


def raise_open_files() -> int:
    """Raise this process's soft limit on open files to its hard limit; the new soft limit.

    Every stream holds a socket: the soft limit many systems start a process with
    (1,024) would refuse connections long before LEGATION_MAX_STREAMS, while the hard
    limit (which only an administrator raises) is usually far higher.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # a hard limit past what the kernel allows a process
        return soft
    return hard
