"""A live standing asked for while a newer one is being computed, through a real server:
readers meanwhile get the last answer, at its own position; min_position, known_at and
the edge's memory never give them anything older than they asked for."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.factories import expulsion
from tests.servers import serving

URL = "/v1/countries/RU"
WAITING_ON_THE_LOCK = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
   AND query LIKE '%incident_versions%'
"""


def expelled(answer: httpx.Response) -> int:
    figure: int = answer.json()["expulsions"]["expelled_foreign_diplomats"]
    return figure


async def until_waiting(conn: asyncpg.Connection[asyncpg.Record], count: int) -> None:
    """Until `count` standings queries wait on the lock, i.e. are being computed."""
    for _ in range(500):  # PostgreSQL tells no one when a query starts waiting: look
        if await conn.fetchval(WAITING_ON_THE_LOCK) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} standings queries waited on the lock")


async def test_a_live_read_meanwhile_gets_the_last_answer_at_its_own_position(
    dsn: str, admin_key: str
) -> None:
    keyed = {"Authorization": f"Bearer {admin_key}"}
    with serving(dsn) as base:
        async with httpx.AsyncClient(base_url=base, headers=keyed, timeout=30) as client:
            first = (await client.post("/v1/incidents", json=expulsion(count=2))).headers
            old = await client.get(URL, params={"min_position": first["legation-position"]})
            second = (await client.post("/v1/incidents", json=expulsion(count=3))).headers
            newer = second["legation-position"]
            await client.get("/v1/incidents", params={"min_position": newer})
            blocker = await asyncpg.connect(dsn)
            watcher = await asyncpg.connect(dsn)
            try:
                # The next standings computation waits here, as a slow aggregate would.
                locked = blocker.transaction()
                await locked.start()
                await blocker.execute("LOCK TABLE incident_versions IN ACCESS EXCLUSIVE MODE")
                computing = asyncio.ensure_future(client.get(URL))
                await until_waiting(watcher, 1)
                told = asyncio.ensure_future(client.get(URL, params={"min_position": newer}))
                pinned = asyncio.ensure_future(client.get(URL, params={"known_at": newer}))
                meanwhile = await asyncio.wait_for(client.get(URL), timeout=10)
                again = await asyncio.wait_for(client.get(URL), timeout=10)
                await until_waiting(watcher, 2)  # the known_at read computes its own
                waited = not (computing.done() or told.done() or pinned.done())
                await locked.rollback()
            finally:
                await blocker.close()
                await watcher.close()
            answers = [await computing, await told, await pinned]
            after = await client.get(URL)
    assert waited
    for previous in (meanwhile, again):
        assert previous.content == old.content
        assert expelled(previous) == 2
        for header in ("legation-position", "etag"):
            assert previous.headers[header] == old.headers[header]
        assert f"known_at={old.headers['legation-position']}" in previous.headers["link"]
    for answer in [*answers, after]:
        assert answer.headers["legation-position"] == newer
        assert expelled(answer) == 5
