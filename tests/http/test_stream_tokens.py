"""Stream tokens over HTTP: who may have one, and what does not open a stream.

Opening a stream with a good token is tested through a real server
(tests/process/test_standings_stream.py): the test client does not stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import DEFAULT_KEY_SECRET, Settings
from service.http.stream_tokens import issue
from tests.conftest import make_key
from tests.http.test_subscriptions import bearer

Client = AsyncTestClient[Any]


@pytest.fixture
async def closed(dsn: str) -> AsyncIterator[Client]:
    """An app whose reads need a key; no key of its own."""
    settings = Settings(database_url=dsn, public_reads=False)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@pytest.fixture
async def open_reads(dsn: str) -> AsyncIterator[Client]:
    """An app with public reads; no key of its own."""
    async with AsyncTestClient(app=create_app(Settings(database_url=dsn))) as client:
        yield client


async def test_a_token_needs_a_key_with_read_even_where_reads_are_public(
    open_reads: Client, dsn: str
) -> None:
    reader = await make_key(dsn, ("read",), name="reader")
    writer = await make_key(dsn, ("write",), name="writer")
    assert (await open_reads.post("/v1/stream-tokens")).status_code == 401
    assert (await open_reads.post("/v1/stream-tokens", headers=bearer(writer))).status_code == 403
    made = await open_reads.post("/v1/stream-tokens", headers=bearer(reader))
    assert made.status_code == 201, made.text
    expires = datetime.fromisoformat(made.json()["expires_at"])
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)


def problem_of(response: Any) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


@pytest.mark.parametrize("path", ["/v1/events/stream", "/v1/standings/stream"])
async def test_what_is_not_a_good_token_opens_no_stream(
    closed: Client, dsn: str, pool: asyncpg.Pool[Any], path: str
) -> None:
    await make_key(dsn, ("read",), name="reader")
    await make_key(dsn, ("write",), name="writer")
    expired, _ = issue(DEFAULT_KEY_SECRET, "reader", time.time() - 301)
    foreign, _ = issue("another key secret", "reader")
    unknown, _ = issue(DEFAULT_KEY_SECRET, "nobody")
    for token in ("lst_garbage", expired, foreign, unknown):
        assert "stream token" in problem_of(await closed.get(path, params={"token": token}))
    unscoped, _ = issue(DEFAULT_KEY_SECRET, "writer")
    assert (await closed.get(path, params={"token": unscoped})).status_code == 403
    revoked, _ = issue(DEFAULT_KEY_SECRET, "reader")
    await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'reader'")
    await asyncio.sleep(1.1)  # keys are remembered for a second
    assert "stream token" in problem_of(await closed.get(path, params={"token": revoked}))
