"""A running app prunes delivery attempts past their retention in the background."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from tests.db.test_delivery_retention import OLD, RECENT, ages, attempts


async def test_a_running_server_prunes_old_attempts_and_keeps_recent_ones(
    dsn: str, pool: asyncpg.Pool[Any]
) -> None:
    await attempts(pool, OLD + RECENT)
    settings = Settings(database_url=dsn, delivery_retention_days=30)
    async with AsyncTestClient(app=create_app(settings)):
        async with asyncio.timeout(10):
            while len(await ages(pool)) > len(RECENT):  # noqa: ASYNC110 - the server prunes
                await asyncio.sleep(0.1)
    assert await ages(pool) == list(RECENT)
