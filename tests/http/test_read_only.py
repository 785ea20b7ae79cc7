"""A read-only app (here on a primary, as after a promotion): writes refused, reads waited for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.log.replay import ReplayBell, replay_lag
from tests.conftest import authorised
from tests.factories import expulsion

Client = AsyncTestClient[Any]
PRIMARY = "https://primary.example"


@pytest.fixture
async def reader(dsn: str, admin_key: str) -> AsyncIterator[Client]:
    settings = Settings(
        database_url=dsn, read_only=True, primary_url=PRIMARY, read_wait_seconds=0.3
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield authorised(test_client, admin_key)


async def test_writes_are_refused_naming_the_primary(reader: Client) -> None:
    refused = await reader.post("/v1/incidents?dry=1", json=expulsion())
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:legation:problem:read-only"
    assert PRIMARY in refused.json()["detail"]
    assert refused.headers["link"] == f'<{PRIMARY}/v1/incidents?dry=1>; rel="alternate"'
    assert "retry-after" not in refused.headers  # retrying here never helps
    assert (await reader.get("/v1/events")).json()["items"] == []


async def test_without_a_primary_url_the_refusal_has_no_link(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=dsn, read_only=True))
    async with AsyncTestClient(app=app) as test_client:
        refused = await authorised(test_client, admin_key).post(
            "/v1/incidents:batch", content=b"{}\n"
        )
    assert refused.status_code == 503
    assert "link" not in refused.headers
    assert "to the primary" in refused.json()["detail"]


async def test_a_position_past_the_head_is_waited_for_not_refused(
    reader: Client, client: Client
) -> None:
    # Where writes are taken it cannot come; on a standby it may be on its way.
    for url in (
        "/v1/events",
        "/v1/countries/RU",
        f"/v1/incidents/{'0' * 8}-0000-4000-8000-{'0' * 12}",
    ):
        assert (await client.get(url, params={"min_position": 5})).status_code == 422
        late = await reader.get(url, params={"min_position": 5})
        assert late.status_code == 503, late.text
        assert late.headers["retry-after"] == "1"


async def test_reads_wait_for_the_log_and_the_read_models(reader: Client, client: Client) -> None:
    written = await client.post("/v1/incidents", json=expulsion())
    position = int(written.headers["legation-position"])
    read = await reader.get(written.headers["location"], params={"min_position": position})
    assert read.status_code == 200, read.text
    standing = await reader.get("/v1/countries/RU", params={"min_position": position})
    assert int(standing.headers["legation-position"]) >= position
    ready = (await reader.get("/ready")).json()
    assert ready["status"] == "ok"
    assert "replay_lag_seconds" not in ready  # a primary replays nothing


async def test_the_replay_bell_rings_when_the_wal_moves(pool: asyncpg.Pool[Any]) -> None:
    bell = ReplayBell(pool, interval=1.0)
    assert await bell.poll()  # the first look always rings: anything may have happened
    assert not await bell.poll()
    await pool.execute("CREATE TABLE moved (n int); INSERT INTO moved VALUES (1)")
    assert await bell.poll()
    async with pool.acquire() as conn:
        assert await replay_lag(conn) is None
