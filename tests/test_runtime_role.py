"""The runtime role: INSERT and SELECT on the log, nothing more; the service runs under it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.projections.rebuild import rebuild
from tests.conftest import authorised
from tests.factories import expulsion


def as_runtime(dsn: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"legation_runtime@{host}"))


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_the_runtime_role_may_not_change_the_log(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(as_runtime(dsn))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_service_runs_under_the_runtime_role(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=as_runtime(dsn)))
    async with AsyncTestClient(app=app) as client:
        authorised(client, admin_key)
        created = await client.post("/v1/incidents", json=expulsion())
        assert created.status_code == 201
        position = created.headers["legation-position"]
        standing = await client.get("/v1/countries/RU", params={"min_position": position})
        assert standing.json()["expulsions"]["expelled_foreign_diplomats"] == 15
        assert (await client.get("/ready")).status_code == 200
    await rebuild(dsn)  # as the migrating role; the runtime keeps its rights on the new tables
    async with AsyncTestClient(app=create_app(Settings(database_url=as_runtime(dsn)))) as client:
        authorised(client, admin_key)
        again = await client.post("/v1/incidents", json=expulsion(count=2))
        assert again.status_code == 201
        after = await client.get(
            "/v1/countries/RU", params={"min_position": again.headers["legation-position"]}
        )
        assert after.json()["expulsions"]["expelled_foreign_diplomats"] == 17


async def test_the_runtime_role_holds_no_update_right_on_the_log(pool: asyncpg.Pool[Any]) -> None:
    rights = await pool.fetchrow(
        "SELECT has_table_privilege('legation_runtime', 'events', 'INSERT') AS insert,"
        " has_table_privilege('legation_runtime', 'events', 'SELECT') AS select,"
        " has_table_privilege('legation_runtime', 'events', 'UPDATE') AS update,"
        " has_table_privilege('legation_runtime', 'events', 'DELETE') AS delete"
    )
    assert rights is not None
    assert dict(rights) == {"insert": True, "select": True, "update": False, "delete": False}
