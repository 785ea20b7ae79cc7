"""Connections: the asyncpg pool and its codecs (the migrations are service.log.migrations)."""

from __future__ import annotations

from typing import Any

import asyncpg


def _jsonb_encode(value: bytes | str) -> bytes:
    # jsonb's binary format is a version byte (1) and the JSON text; sending
    # msgspec's bytes this way skips a decode to str and a re-parse on our side.
    return b"\x01" + (value.encode() if isinstance(value, str) else value)


def _jsonb_decode(value: bytes) -> bytes:
    return value[1:]


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Codecs every connection needs: jsonb in and out as encoded JSON bytes."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    # The default reset is a round trip on every release. Pooled connections
    # never change session state here: LISTEN and session advisory locks live
    # on connections of their own, and settings are only ever SET LOCAL.
    return None


async def create_pool(
    dsn: str, min_size: int = 2, max_size: int = 10, statement_cache_size: int = 100
) -> asyncpg.Pool[Any]:
    """A pool whose connections carry the service's codecs.

    `statement_cache_size=0` for a pooler that hands each transaction to another
    server connection: a named statement prepared on one would be missing on the next.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=_keep_session,
        command_timeout=60,
        statement_cache_size=statement_cache_size,
    )


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    """One connection outside the pool (listeners, tools), with the service's codecs."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn
