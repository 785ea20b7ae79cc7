"""Who may do what: every route names the scope it needs in its route_meta.

`public` routes need nothing; `read` ones are public unless LEGATION_PUBLIC_READS=false;
`write`, `subscribe` and `admin` need a key with that scope (admin may do everything).
"""

from __future__ import annotations

import time
from typing import Any, Final

import asyncpg
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.config import Settings
from service.http import stream_tokens
from service.http.keys import Key, lookup, lookup_name
from service.http.problems import Problem
from service.http.route_meta import meta_of

REMEMBER_SECONDS: Final = 1.0


class Unauthorized(Problem):
    """No key, or a key that is unknown or revoked."""

    status, slug, title = 401, "unauthorized", "A valid API key is required"


class Forbidden(Problem):
    """A valid key without the scope the route needs."""

    status, slug, title = 403, "forbidden", "The API key lacks the scope"


class KeyCache:
    """Keys by value for a second, so a burst of requests asks the database once."""

    def __init__(self, key_secret: str) -> None:
        self._secret = key_secret
        self._pool: asyncpg.Pool[Any] | None = None
        self._entries: dict[str, tuple[float, Key | None]] = {}
        self._named: dict[str, tuple[float, Key | None]] = {}

    def use(self, pool: asyncpg.Pool[Any]) -> None:
        """Look keys up in this pool (made when the app starts)."""
        self._pool = pool

    async def find(self, key: str) -> Key | None:
        """The key with this value (None for unknown or revoked), at most a second old."""
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < REMEMBER_SECONDS:
            return cached[1]
        if self._pool is None:
            raise RuntimeError("the app has not started: no pool to look keys up in")
        async with self._pool.acquire() as conn:
            found = await lookup(conn, key, self._secret)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (now, found)
        return found

    async def named(self, name: str) -> Key | None:
        """The unrevoked key with this name (None: none), at most a second old."""
        now = time.monotonic()
        cached = self._named.get(name)
        if cached is not None and now - cached[0] < REMEMBER_SECONDS:
            return cached[1]
        if self._pool is None:
            raise RuntimeError("the app has not started: no pool to look keys up in")
        async with self._pool.acquire() as conn:
            found = await lookup_name(conn, name)
        if len(self._named) > 10_000:
            self._named.clear()
        self._named[name] = (now, found)
        return found


def request_key(connection: ASGIConnection[Any, Any, Any, Any]) -> Key:
    """The key a request was authorised with (on routes whose scope needs one)."""
    key = connection.scope.get("legation_key")
    if not isinstance(key, Key):
        raise RuntimeError(f"{connection.url.path} was not authorised with a key")
    return key


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Authorizer:
    """Who may call each route, given the settings and the keys it was built with."""

    def __init__(self, settings: Settings, keys: KeyCache) -> None:
        self.public_reads = settings.public_reads
        self.keys = keys
        self.read_only, self.primary_url = settings.read_only, settings.primary_url
        self.key_secret = settings.key_secret

    async def authorize(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        """401 without a valid key, 403 without the route's scope."""
        meta = meta_of(handler)
        needed = meta.scope if meta else None
        if needed is None and (
            connection.url.path.startswith("/schema")
            or getattr(handler, "http_methods", None) == {"OPTIONS"}
        ):
            return  # the docs, the OpenAPI document and Litestar's OPTIONS answers are public
        if needed is None:
            raise RuntimeError(f"{handler} has no auth decision (route_meta(scope=...))")
        keyed = meta is not None and meta.keyed
        if needed == "public" or (needed == "read" and self.public_reads and not keyed):
            return
        value = _bearer(connection)
        token = connection.query_params.get("token") if meta and meta.stream_token else None
        key: Key | None
        if value is None and token is not None:
            key = await self._stream_key(token)
        else:
            key = await self.keys.find(value) if value else None
        if key is None:
            raise Unauthorized(
                "send Authorization: Bearer <key>; make one with `legation keys create`",
                headers={"WWW-Authenticate": 'Bearer realm="legation"'},
            )
        if not key.allows(needed):
            raise Forbidden(
                f"the key {key.name!r} lacks the {needed!r} scope",
                headers={
                    "WWW-Authenticate": f'Bearer realm="legation", error="insufficient_scope", '
                    f'scope="{needed}"'
                },
            )
        connection.scope["legation_actor"] = key.name  # type: ignore[typeddict-unknown-key]
        connection.scope["legation_key"] = key  # type: ignore[typeddict-unknown-key]

    async def _stream_key(self, token: str) -> Key:
        """The key a stream token was made with; 401 when it is not valid (any more)."""
        name = stream_tokens.key_of(self.key_secret, token)
        key = await self.keys.named(name) if name is not None else None
        if key is None:
            raise Unauthorized(
                "the stream token is not valid (tokens last 5 minutes, and end with their"
                " key): ask POST /v1/stream-tokens for a new one",
                headers={"WWW-Authenticate": 'Bearer realm="legation"'},
            )
        return key
