"""The projector in the app: it follows the log after losing LISTEN, and announces checkpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from service.log.doorbell import Doorbell
from service.projections.projector import Projector


async def test_the_projector_follows_after_its_listen_connection_is_killed(
    client: Any, pool: asyncpg.Pool[Any]
) -> None:
    from tests.factories import expulsion

    first = await client.post("/v1/incidents", json=expulsion())
    assert (
        await client.get(
            "/v1/incidents", params={"min_position": first.headers["legation-position"]}
        )
    ).status_code == 200
    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    assert killed >= 1
    second = await client.post("/v1/incidents", json=expulsion(count=2))
    listed = await client.get(
        "/v1/incidents", params={"min_position": second.headers["legation-position"]}
    )
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 2


async def test_each_checkpoint_is_announced_to_processes_that_do_not_project(
    client: Any, dsn: str, pool: asyncpg.Pool[Any]
) -> None:
    from tests.factories import expulsion

    heard: asyncio.Queue[None] = asyncio.Queue()
    bell = Doorbell(dsn)
    follower = Projector(pool, dsn, bell, projects=False)
    bell.on_projected(lambda: heard.put_nowait(None))
    bell.start()
    follower.start()
    try:
        await asyncio.wait_for(bell.connected.wait(), 10)
        posted = await client.post("/v1/incidents", json=expulsion())
        position = int(posted.headers["legation-position"])
        async with asyncio.timeout(10):
            await heard.get()  # announced; the follower reads the checkpoint row
            while not await follower.caught_up(position, 0.05):
                pass
        assert follower.position == position
        assert not follower.active  # it followed without ever taking the lock
    finally:
        await follower.stop()
        await bell.stop()
