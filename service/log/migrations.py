"""The schema's migrations: alembic, configured in code, and the revisions applied.

Apart from the connections because alembic takes a third of a second to
import, and processes that only connect (a rebuild's parts) need none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


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
