"""sql/ holds the functions exactly as the migrations up to 0009 left them, and
append_new_streams, which 0013 added.

Migration 0010 runs each file of sql/; should a file drift from the definition
the earlier migrations made, the database at head would differ from one at 0009.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command

from service.log.migrations import alembic_config
from tests.conftest import migrated_to

SQL = Path(__file__).resolve().parents[2] / "sql"

# Everything CREATE OR REPLACE sets or keeps: the definition (with its SET
# options), its owner and who may execute it.
FUNCTIONS = """
SELECT p.proname, pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner), p.proacl::text
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
 ORDER BY p.proname
"""


async def functions(dsn: str) -> dict[str, tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {row[0]: tuple(row[1:]) for row in await conn.fetch(FUNCTIONS)}
    finally:
        await conn.close()


@pytest.fixture
async def at_0009(server_dsn: str) -> AsyncIterator[str]:
    """A database migrated up to 0009 only: the functions as the old migrations made them."""
    async with migrated_to(server_dsn, "0009") as dsn:
        yield dsn


async def test_every_function_the_migrations_made_has_its_file() -> None:
    assert {path.stem for path in SQL.glob("*.sql")} == {
        "append_events",
        "append_events_in_turn",
        "append_new_streams",
        "batch_events",
        "events_are_append_only",
    }


async def test_the_files_define_the_functions_as_0009_left_them(at_0009: str, dsn: str) -> None:
    before = await functions(at_0009)
    assert set(before) == {path.stem for path in SQL.glob("*.sql")} - {"append_new_streams"}
    head = await functions(dsn)
    assert {name: head[name] for name in before} == before


async def test_going_back_to_0009_keeps_the_functions(at_0009: str, dsn: str) -> None:
    command.downgrade(alembic_config(dsn), "0009")
    assert await functions(dsn) == await functions(at_0009)
