"""Answers kept in memory do not survive `legation rebuild` (issue 12, item 9).

A read-model row is damaged by hand, a standing read from it is kept (by the
standings cache and the edge), then a rebuild fixes the row: the next read must
give the fixed figure, told by the rebuild's announcement or, should that be
missed, by the swapped tables.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.projections import rebuild as rebuilding
from service.projections import rebuild_watch
from service.projections.rebuild import rebuild
from tests.conftest import authorised
from tests.factories import expulsion

WAIT = 10.0  # for the announcement to arrive (or the tables to be checked), at most


async def expelled(client: AsyncTestClient[Any]) -> int:
    response = await client.get("/v1/countries/RU")
    assert response.status_code == 200
    count: int = response.json()["expulsions"]["expelled_foreign_diplomats"]
    return count


async def stale_then_rebuilt(dsn: str, admin_key: str) -> int:
    """The standing after a rebuild fixed the damaged row its kept answer was read from."""
    async with AsyncTestClient(app=create_app(Settings(database_url=dsn))) as client:
        authorised(client, admin_key)
        position = (await client.post("/v1/incidents", json=expulsion(count=15))).headers[
            "legation-position"
        ]
        await client.get("/v1/incidents", params={"min_position": position})  # projected
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE incident_versions SET count = 99")
        finally:
            await conn.close()
        assert await expelled(client) == 99  # read from the damaged row, and kept
        assert await expelled(client) == 99
        cache = client.app.state.answers
        generation = cache.generation
        assert await rebuild(dsn) == int(position)
        for _ in range(int(WAIT / 0.05)):  # the announcement comes on another connection
            if cache.generation != generation:
                break
            await asyncio.sleep(0.05)
        return await expelled(client)


async def test_a_rebuild_announces_itself_and_kept_answers_are_dropped(
    dsn: str, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuild_watch, "CHECK_INTERVAL", 3600.0)  # only the announcement
    assert await stale_then_rebuilt(dsn, admin_key) == 15


async def test_a_missed_announcement_is_made_up_for_by_the_swapped_tables(
    dsn: str, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilding, "REBUILT_CHANNEL", "legation_nobody_listens")
    monkeypatch.setattr(rebuild_watch, "CHECK_INTERVAL", 0.2)
    assert await stale_then_rebuilt(dsn, admin_key) == 15
