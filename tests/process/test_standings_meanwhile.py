"""A live standing asked for while a newer one is being computed, through a real server:
readers meanwhile get the last answer, at its own position; min_position still waits."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.factories import expulsion
from tests.servers import serving

URL = "/v1/countries/RU"


def expelled(answer: httpx.Response) -> int:
    figure: int = answer.json()["expulsions"]["expelled_foreign_diplomats"]
    return figure


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
            try:
                # The next standings computation waits here, as a slow aggregate would.
                locked = blocker.transaction()
                await locked.start()
                await blocker.execute("LOCK TABLE incident_versions IN ACCESS EXCLUSIVE MODE")
                computing = asyncio.ensure_future(client.get(URL))
                await asyncio.sleep(0.5)
                waiting = asyncio.ensure_future(client.get(URL, params={"min_position": newer}))
                meanwhile = await asyncio.wait_for(client.get(URL), timeout=10)
                await asyncio.sleep(0.5)
                blocked = not computing.done() and not waiting.done()
                await locked.rollback()
            finally:
                await blocker.close()
            fresh, told = await computing, await waiting
    assert blocked
    assert meanwhile.headers["legation-position"] == old.headers["legation-position"]
    assert meanwhile.content == old.content
    assert expelled(meanwhile) == 2
    for answer in (fresh, told):
        assert answer.headers["legation-position"] == newer
        assert expelled(answer) == 5
