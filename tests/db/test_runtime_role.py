"""The runtime role: INSERT and SELECT on the log, nothing more; the service runs under it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest


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


async def test_the_runtime_role_holds_no_update_right_on_the_log(pool: asyncpg.Pool[Any]) -> None:
    rights = await pool.fetchrow(
        "SELECT has_table_privilege('legation_runtime', 'events', 'INSERT') AS insert,"
        " has_table_privilege('legation_runtime', 'events', 'SELECT') AS select,"
        " has_table_privilege('legation_runtime', 'events', 'UPDATE') AS update,"
        " has_table_privilege('legation_runtime', 'events', 'DELETE') AS delete"
    )
    assert rights is not None
    assert dict(rights) == {"insert": True, "select": True, "update": False, "delete": False}
