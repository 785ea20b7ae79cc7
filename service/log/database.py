"""Connections: the asyncpg pool, its codecs, and running the migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


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


def sqlalchemy_url(dsn: str) -> str:
    """The DSN with the psycopg driver alembic runs through."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def alembic_config(dsn: str) -> Config:
    """Alembic configured in code: there is no alembic.ini to keep in step."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    return config


def migrate(dsn: str) -> None:
    """Bring the database to the newest revision."""
    command.upgrade(alembic_config(dsn), "head")


def head_revisions() -> frozenset[str]:
    """The newest revisions the code knows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def applied_revisions(conn: asyncpg.Connection[Any] | Any) -> frozenset[str]:
    """The revisions the database is at (empty before the first migration)."""
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return frozenset()
    rows = await conn.fetch("SELECT version_num FROM alembic_version")
    return frozenset(r[0] for r in rows)
