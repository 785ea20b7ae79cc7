"""Request ids: taken from X-Request-ID or made up, answered in the same header, and logged."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = b"x-request-id"
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
access_log = logging.getLogger("legation.access")


def request_id(scope: Scope) -> str:
    """The id of the request in `scope` (set by the middleware)."""
    return str(scope.get("legation_request_id", ""))


def _given(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER and _ACCEPTABLE.match(value):
            return value.decode()
    return None


_counter = itertools.count(1)
_PROCESS: Final = os.urandom(6).hex()


def _new_id() -> str:
    # Unique without a random draw per request: a random process part and a counter.
    return f"{_PROCESS}{next(_counter):012x}"


def middleware(app: ASGIApp) -> ASGIApp:
    """Give every HTTP request an id, answer it as X-Request-ID, log the request as JSON."""

    async def with_id(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = _given(scope) or _new_id()
        scope["legation_request_id"] = rid  # type: ignore[typeddict-unknown-key]
        started, status = time.perf_counter(), 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid.encode())]
            await send(message)

        try:
            await app(scope, receive, answer)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                fields = {
                    "request_id": rid,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
                access_log.info("request", extra={"fields": fields})

    return with_id
