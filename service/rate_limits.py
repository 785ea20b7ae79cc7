"""Rate limits: a token bucket per API key and per client address, answered 429 when empty."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, Scope, Send

from service.problems import Problem

EXEMPT = ("/health", "/ready", "/metrics")
_encoder = msgspec.json.Encoder()


class TooManyRequests(Problem):
    """The caller used up its requests for now."""

    status, slug, title = 429, "too-many-requests", "Too many requests"


class Buckets:
    """Token buckets: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, caller: str) -> float:
        """0 when `caller` may go ahead (a token is taken), else the seconds to wait."""
        now = time.monotonic()
        tokens, then = self._buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle callers rather than grow
                self._buckets.clear()
            return 0.0
        self._buckets[caller] = (tokens, now)
        return (1 - tokens) / self.rate


def _callers(scope: Scope) -> list[str]:
    # The client address always counts (changing keys must not lift the limit); a key
    # also has its own bucket, shared by every address it is used from.
    client = scope.get("client")
    callers = [f"client:{client[0] if client else 'unknown'}"]
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            callers.append("key:" + hashlib.sha256(value).hexdigest()[:24])
    return callers


def middleware(buckets: Buckets) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware (factory) refusing callers past their rate with 429 and Retry-After."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"] in EXEMPT:
                await app(scope, receive, send)
                return
            wait = max(buckets.wait(caller) for caller in _callers(scope))
            if wait == 0.0:
                await app(scope, receive, send)
                return
            problem = TooManyRequests(f"slow down: retry in {math.ceil(wait)} s")
            body = _encoder.encode(problem.body())
            headers: list[tuple[bytes, bytes]] = [
                (b"content-type", b"application/problem+json"),
                (b"retry-after", str(math.ceil(wait)).encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 429,
                "headers": headers,
            }
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return limited

    return wrap
