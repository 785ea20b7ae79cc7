"""The per-key subscription cap under concurrent creations, through a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from tests.conftest import make_key
from tests.http.test_subscriptions import bearer
from tests.servers import serving


async def test_concurrent_creations_do_not_pass_the_cap(dsn: str, pool: asyncpg.Pool[Any]) -> None:
    key = await make_key(dsn, ("subscribe",), name="racer")
    body = {"url": "http://127.0.0.1:9/hooks"}
    # A real server: the test client hands the app one request at a time.
    with serving(dsn, max_subscriptions_per_key="3", webhook_allow_private="true") as base:
        async with httpx.AsyncClient(base_url=base, headers=bearer(key), timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/subscriptions", json=body) for _ in range(16))
            )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 3 + [409] * 13
    assert await pool.fetchval("SELECT count(*) FROM subscriptions WHERE owner = 'racer'") == 3
