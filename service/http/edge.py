"""The edge of every HTTP request: its id, its rate limit, metrics, the access log, and
answers remembered at the current log position.

One ASGI layer instead of three: each layer wraps `send` once more, which the
fastest reads feel. It wraps the whole of Litestar's request handling (exception
handling, CORS, routing), so every answer carries a request id and is measured,
and a remembered answer is sent without any of it: that halves what a read costs.
A route that opts in with route_meta(remember=True) has its live 200 answers kept by
URL and representation (JSON or CSV, from Accept) with the position they were computed
at (their Legation-Position header); the same URL is answered from memory while the
read models stay at that position, without routing, parsing parameters, checking
their names or calling the handler. Which paths lead to such a route is learnt as
requests are routed.
That is only sound where the answer is a function of URL and position alone, which
is why it is off when reads need a key.

A HEAD is routed and answered as the GET it asks about, and its body dropped here.
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Final

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseStartEvent,
    HTTPScope,
    Message,
    Receive,
    Scope,
    Send,
)
from litestar.utils import normalize_path

from service.config import Settings
from service.http import rate_limits, request_ids
from service.http.metrics import Metrics
from service.http.representations import Representation, choose
from service.http.route_meta import RouteMeta, meta_of
from service.http.stream_limits import SERVER_SEND
from service.projections.answer_cache import AnswerCache, Remembered

access_log = logging.getLogger("legation.access")
_encoder = msgspec.json.Encoder()
_POSITION: Final = b"legation-position"
# A 304 depends on the copy the client holds; Accept-Datetime asks for another position.
_NOT_BY_URL: Final = frozenset((b"if-none-match", b"accept-datetime"))
# What a Host header may hold (RFC 3986's host and port characters), as routing checks it.
_HOST: Final = re.compile(rb"\A[0-9A-Za-z!$&'()*+,;=\-._~:\[\]@%]*\Z")
ROUTES_KEPT: Final = 10_000
_HEAD: Final = "legation_head"  # in the scope of a HEAD answered as a GET
_METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# "edge" (or "edge-cors" for a cross-origin request), path, query, representation
EdgeKey = tuple[str, str, bytes, Representation | bytes]
# (a chart's: the Accept header itself, which picks SVG or the specification)


class Edge:
    """The outermost ASGI layer: called with Litestar's request handling, it wraps it."""

    def __init__(self, settings: Settings, metrics: Metrics, answers: AnswerCache) -> None:
        self.metrics = metrics
        self.buckets = (
            rate_limits.Buckets(settings.rate_limit, settings.rate_burst)
            if settings.rate_limit > 0
            else None
        )
        self.remembering = settings.public_reads
        self.answers = answers  # shared with the standings handlers
        # Which paths route to a remembering route: a kept answer is found before routing.
        # (with the route's template, for the metrics of what is replayed).
        self._remembering_routes: dict[str, tuple[RouteMeta, str]] = {}

    def __call__(self, app: ASGIApp) -> ASGIApp:
        async def edge(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            rid = request_ids.given(scope) or request_ids.new_id()
            scope["legation_request_id"] = rid  # type: ignore[typeddict-unknown-key]
            scope[SERVER_SEND] = send  # type: ignore[typeddict-unknown-key]  # stalled streams are aborted
            head = scope["method"] == "HEAD"
            if head:
                send = _as_head(scope, send)
            started = time.perf_counter()
            status = [500]
            try:
                await self._answer(app, scope, receive, send, status)
            finally:
                if head:  # measured and logged as what was asked
                    scope["method"] = "HEAD"
                self._measure(scope, status[0], time.perf_counter() - started, rid)

        return edge

    async def _answer(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, status: list[int]
    ) -> None:
        rid = request_ids.request_id(scope).encode()
        # As routing will see it (`/health/` is `/health`); keys are made from it before and after.
        path = normalize_path(scope["path"])
        wait = self._wait(scope, path)
        if wait:
            status[0] = 429
            await _too_many(send, wait, rid)
            return
        known = self._remembering_routes.get(path)
        key = self._key(scope, path, known[0]) if known else None
        remembered = self._recall(key) if key else None
        if remembered is not None and known is not None:
            status[0] = 200
            scope["path_template"] = known[1]  # measured as the route it stands for
            await _replay(send, remembered, rid)
            return
        start: list[HTTPResponseStartEvent] = []
        chunks: list[bytes] = []
        generation = self.answers.generation
        kept: EdgeKey | None = None  # the key of an answer being kept

        async def answer(message: Message) -> None:
            nonlocal kept
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                start.append(message)
                headers = [*message.get("headers", ()), (request_ids.HEADER, rid)]
                if status[0] == 405 or scope.get("method") == "OPTIONS":
                    headers = _head_allowed(headers)
                message["headers"] = headers
                # Routed by now: whether the route keeps its answers is known.
                meta = self._kept_route(scope, path) if status[0] == 200 else None
                kept = self._key(scope, path, meta) if meta else None
            elif kept and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await app(scope, receive, answer)
        if kept:
            self._remember(kept, start[0], b"".join(chunks), generation)

    def _wait(self, scope: Scope, path: str) -> float:
        if self.buckets is None or path in rate_limits.EXEMPT:
            return 0.0
        return max(self.buckets.wait(caller) for caller in rate_limits.callers(scope))

    def _kept_route(self, scope: Scope, path: str) -> RouteMeta | None:
        """The route's options if its answers are kept (learnt for the path once routed)."""
        handler = scope.get("route_handler")
        if not self.remembering or handler is None:
            return None
        meta = meta_of(handler)
        if meta is None or not meta.remember:
            return None
        if len(self._remembering_routes) >= ROUTES_KEPT:
            self._remembering_routes.clear()  # paths are many (one per country): relearnt
        self._remembering_routes[path] = meta, str(scope.get("path_template", path))
        return meta

    def _key(self, scope: Scope, path: str, meta: RouteMeta) -> EdgeKey | None:
        if scope.get("method") != "GET" or b"known_at" in scope["query_string"]:
            return None
        accept, origin, cookie = None, False, False
        for name, value in scope["headers"]:
            if name in _NOT_BY_URL:
                return None  # the answer depends on the request, not only on the URL
            if name == b"accept" and accept is None:
                accept = value
            elif name == b"host" and not _HOST.match(value):
                return None  # routing answers it 400, and so must a kept answer
            origin, cookie = origin or name == b"origin", cookie or name == b"cookie"
        # The CORS layer (inside this one) adds headers to a cross-origin answer: the
        # same for every origin ("*"), unless a cookie makes it name the origin.
        if origin and cookie:
            return None
        kept = "edge-cors" if origin else "edge"
        if meta.answers:
            return kept, path, scope["query_string"], accept or b""  # SVG or spec
        # JSON and CSV answers of one URL are kept apart; a 406 is never kept.
        representation = choose(accept, meta.csv)
        if representation is None:
            return None
        return kept, path, scope["query_string"], representation

    def _recall(self, key: EdgeKey) -> Remembered | None:
        # The projector advances the cache as it moves: what is kept is live.
        remembered = self.answers.get(key)
        if not isinstance(remembered, Remembered) or remembered.position != self.answers.head:
            return None
        return remembered

    def _remember(
        self,
        key: EdgeKey,
        start: HTTPResponseStartEvent,
        body: bytes,
        generation: int,
    ) -> None:
        headers = [pair for pair in start["headers"] if pair[0] != request_ids.HEADER]
        position = next((value for name, value in headers if name == _POSITION), None)
        if position is None:
            return
        # Kept as live at the position it holds: dropped once the read models move on.
        answer = Remembered(int(position), headers, body)
        self.answers.put(key, answer, int(position), generation)

    def _measure(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        route = str(scope.get("path_template") or "unmatched")
        # Requests no route took are measured too: a method no one serves is "OTHER",
        # so that made-up methods cannot grow the metrics without bound.
        method = str(scope.get("method", ""))
        method = method if method in _METHODS else "OTHER"
        self.metrics.requests[(route, method, status)] += 1
        self.metrics.latency[route].observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")  # the forwarded one only from a trusted proxy
            fields = {
                "request_id": rid,
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
            }
            access_log.info("request", extra={"fields": fields})


def asked_head(scope: Scope) -> bool:
    """Whether the request, routed and answered as a GET, is a HEAD (its body is dropped)."""
    return bool(scope.get(_HEAD))


def _as_head(scope: HTTPScope, send: Send) -> Send:
    """Route a HEAD as the GET it asks about (RFC 9110, 9.3.2); send its answer without the body.

    The method is HEAD again once the answer starts, as the server must see it: a
    GET's Content-Length with no body would be a short answer to it.
    """
    scope[_HEAD] = True  # type: ignore[typeddict-unknown-key]
    scope["method"] = "GET"

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.start":
            scope["method"] = "HEAD"
        elif message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


def _head_allowed(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with HEAD in Allow wherever GET is: this layer answers it (routing does not)."""
    return [
        (name, value + b", HEAD") if name.lower() == b"allow" and _gets(value) else (name, value)
        for name, value in headers
    ]


def _gets(allow: bytes) -> bool:
    methods = {method.strip() for method in allow.split(b",")}
    return b"GET" in methods and b"HEAD" not in methods


async def _replay(send: Send, remembered: Remembered, rid: bytes) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 200,
        "headers": [*remembered.headers, (request_ids.HEADER, rid)],
    }
    await send(start)
    await send({"type": "http.response.body", "body": remembered.body, "more_body": False})


async def _too_many(send: Send, wait: float, rid: bytes) -> None:
    problem = rate_limits.TooManyRequests(f"slow down: retry in {math.ceil(wait)} s")
    body = _encoder.encode(problem.body())
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/problem+json"),
        (b"retry-after", str(math.ceil(wait)).encode()),
        (b"content-length", str(len(body)).encode()),
        (request_ids.HEADER, rid),
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 429,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
