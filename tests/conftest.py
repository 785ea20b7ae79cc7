"""Fixtures: a real PostgreSQL, a migrated template, and a fresh database per test.

With DATABASE_URL set, its server is used; otherwise an embedded PostgreSQL is
started for the session (as `legation serve` does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic import command
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import DEFAULT_KEY_SECRET, Settings
from service.http.keys import create_key
from service.log.database import connect, create_pool
from service.log.migrations import alembic_config, migrate
from service.ops.embedded import EmbeddedPostgres


def reachable_dir(prefix: str) -> Path:
    """A short folder the `legation` user can enter (for the embedded server run as root).

    Not tmp_path: /tmp/pytest-of-root is closed to other users, and the Unix
    socket path under it would be too long.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory for an embedded PostgreSQL, removed afterwards."""
    path = reachable_dir("lg-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def with_database(dsn: str, name: str) -> str:
    """The same server, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def migrated_to(server_dsn: str, revision: str) -> AsyncIterator[str]:
    """A database of its own migrated up to `revision` only (for what a later migration
    does to rows an earlier schema held), dropped afterwards."""
    name = f"legation_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        dsn = with_database(server_dsn, name)
        command.upgrade(alembic_config(dsn), revision)
        yield dsn
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """The PostgreSQL server the suite runs against."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    data_dir = reachable_dir("lg-tests-")
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _admin(server_dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template(server_dsn: str) -> AsyncIterator[str]:
    """A database migrated once, cloned for every test."""
    name = f"legation_template_{os.getpid()}"
    await _admin(server_dsn, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    migrate(with_database(server_dsn, name))
    yield name
    await _admin(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def dsn(server_dsn: str, template: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"legation_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_dsn, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield with_database(server_dsn, name)
    await _admin(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A pool on the test's database with the service's codecs."""
    made = await create_pool(dsn, min_size=1, max_size=25)
    yield made
    await made.close()


async def make_key(
    dsn: str,
    scopes: tuple[str, ...] = ("admin",),
    name: str = "",
    secret: str = DEFAULT_KEY_SECRET,
) -> str:
    """A new API key in the test's database, hashed with `secret` (the apps' default)."""
    conn = await connect(dsn)
    try:
        return await create_key(conn, name or f"test-{uuid.uuid4().hex[:8]}", scopes, secret)
    finally:
        await conn.close()


@pytest.fixture
async def admin_key(dsn: str) -> str:
    """An API key with every scope."""
    return await make_key(dsn, name="tests")


def authorised(client: AsyncTestClient[Any], key: str) -> AsyncTestClient[Any]:
    """The client, sending `key` with every request."""
    client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
async def client(dsn: str, admin_key: str) -> AsyncIterator[AsyncTestClient[Any]]:
    """Real HTTP through the app, on the test's database, with an admin key."""
    app = create_app(Settings(database_url=dsn))
    async with AsyncTestClient(app=app) as test_client:
        yield authorised(test_client, admin_key)
