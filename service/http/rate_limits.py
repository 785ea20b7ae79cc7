"""Rate limits: a token bucket per API key and per client address, answered 429 when empty."""

from __future__ import annotations

import hashlib
import time

import msgspec
from litestar.types import Scope

from service.http.problems import Problem

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


def client_address(scope: Scope) -> str:
    """The request's client address (uvicorn takes X-Forwarded-For from trusted proxies only)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def callers(scope: Scope) -> list[str]:
    """Whose buckets a request draws from: its client address and its key, if any."""
    # The client address always counts (changing keys must not lift the limit); a key
    # also has its own bucket, shared by every address it is used from.
    callers = [f"client:{client_address(scope)}"]
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            callers.append("key:" + hashlib.sha256(value).hexdigest()[:24])
    return callers
