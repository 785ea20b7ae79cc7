"""Keep-alive HTTP/1.1 connections for webhook POSTs: one a subscription, reused while it lasts.

A delivery needs no more of the answer than its status, so the request is written
in one piece and the answer read as far as its status and headers, plus a short
body of stated length; an answer the connection cannot be reused after (a longer or
unstated body, HTTP/1.0, `connection: close`) has its connection closed. A
subscription sends one message at a time, so its connection is never shared. No
redirects are followed and no proxy is used: the connection goes to the pinned
address, and over TLS the server's certificate must name the URL's host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import TYPE_CHECKING, Final

import httpx

if TYPE_CHECKING:
    from uuid import UUID

    from service.subscribers.ssrf import Pinned

MAX_RESPONSE_BYTES: Final = 4096
MAX_HEAD_BYTES: Final = 16 * 1024
# Idle connections are not used after this long (a receiver closes its own in time).
KEEP_ALIVE_S: Final = 5.0
# Past this many idle connections, the oldest are closed.
KEPT: Final = 256


class BadAnswer(Exception):
    """The receiver's answer is not HTTP/1.x as it should be."""


class _Open:
    """One connection, and where it goes."""

    def __init__(
        self,
        origin: tuple[str, int, bool, str | None],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.origin, self.reader, self.writer = origin, reader, writer
        self.idle_since = time.monotonic()

    def usable(self, origin: tuple[str, int, bool, str | None]) -> bool:
        # An idle connection the receiver closed has had its end of file read by now.
        fresh = time.monotonic() - self.idle_since < KEEP_ALIVE_S
        return self.origin == origin and fresh and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Connections:
    """The idle keep-alive connection of each subscription that has one."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        # By default httpx's CA bundle and settings, never the environment's.
        self._tls = tls or httpx.create_ssl_context(trust_env=False)
        self._idle: dict[UUID, _Open] = {}  # oldest first

    async def post(self, subscription: UUID, target: Pinned, head: bytes, body: bytes) -> int:
        """Send one request (`head` holds its request line and headers, blank line
        included) to `target`; the answer's status code."""
        origin = (target.address, target.port, target.tls, target.server_name)
        idle = self._idle.pop(subscription, None)
        if idle is not None and idle.usable(origin):
            try:
                return await self._exchange(subscription, idle, head, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # closed by the receiver as it was reused: once more on a new one
        elif idle is not None:
            idle.close()
        return await self._exchange(subscription, await self._open(origin), head, body)

    async def _open(self, origin: tuple[str, int, bool, str | None]) -> _Open:
        address, port, tls, server_name = origin
        reader, writer = await asyncio.open_connection(
            address,
            port,
            ssl=self._tls if tls else None,
            server_hostname=(server_name or address) if tls else None,
            limit=MAX_HEAD_BYTES,
        )
        return _Open(origin, reader, writer)

    async def _exchange(self, subscription: UUID, conn: _Open, head: bytes, body: bytes) -> int:
        try:
            conn.writer.write(head + body)
            status, reusable = await _answer(conn.reader)
        except BaseException:
            conn.close()
            raise
        if reusable:
            conn.idle_since = time.monotonic()
            # A ping beside a delivery has a connection of its own: one is kept.
            if (other := self._idle.pop(subscription, None)) is not None:
                other.close()
            self._idle[subscription] = conn
            self._close_oldest()
        else:
            conn.close()
        return status

    def _close_oldest(self) -> None:
        # Oldest first: those past KEEP_ALIVE_S, and any over KEPT.
        now = time.monotonic()
        for subscription, conn in list(self._idle.items()):
            if len(self._idle) <= KEPT and now - conn.idle_since < KEEP_ALIVE_S:
                return
            del self._idle[subscription]
            conn.close()

    def drop(self, subscription: UUID) -> None:
        """Close the subscription's idle connection, if it has one."""
        if (idle := self._idle.pop(subscription, None)) is not None:
            idle.close()

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conn in idle.values():
            conn.close()
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the answer, and whether the connection may carry another request."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise BadAnswer(f"answer headers over {MAX_HEAD_BYTES} bytes") from None
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise BadAnswer(f"not an HTTP/1.x answer: {lines[0][:100]!r}")
        status = int(code)
        if 100 <= status < 200:  # informational: the answer follows
            continue
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon:
                headers[name.strip().lower()] = value.strip().lower()
        return status, await _skip_body(reader, version, status, headers)


async def _skip_body(
    reader: asyncio.StreamReader, version: bytes, status: int, headers: dict[bytes, bytes]
) -> bool:
    """Read a short body of stated length; whether the connection may be reused."""
    if version != b"HTTP/1.1" or headers.get(b"connection") == b"close":
        return False
    if status in (204, 304):
        return True
    length = headers.get(b"content-length")
    if b"transfer-encoding" in headers or length is None or not length.isdigit():
        return False  # not read: a receiver must not make us read an endless body
    if int(length) > MAX_RESPONSE_BYTES:
        return False
    await reader.readexactly(int(length))
    return True
