"""`legation rebuild`: fresh read models from the log, identical to the live ones."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from service.ops.demo import load_demo
from service.projections.projector import checkpoint, project_batch
from service.projections.rebuild import rebuild
from tests.factories import expulsion, territorial_control

TABLES = {
    "incidents": "SELECT * FROM incidents ORDER BY id",
    "incident_versions": "SELECT * FROM incident_versions ORDER BY incident_id, valid_from",
}
INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
 WHERE tablename IN ('incidents', 'incident_versions') ORDER BY 1
"""


async def snapshot(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(row) for row in await conn.fetch(sql)] for name, sql in TABLES.items()}


async def test_a_rebuild_gives_the_same_rows_as_the_live_projection(
    dsn: str, client: AsyncTestClient[Any], pool: asyncpg.Pool[Any]
) -> None:
    await load_demo(dsn)
    belgium = "/v1/incidents/5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b03"
    await client.post(f"{belgium}/corrections", json={"changes": {"count": 12}})
    await client.post(f"{belgium}/sources", json={"outlet": "Reuters"})
    town = await client.post("/v1/incidents", json=territorial_control(occurred_on="2022-04-20"))
    assert town.status_code == 201
    last = await client.post(
        "/v1/incidents/5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b04/retraction", json={}
    )
    head = int(last.headers["legation-position"])
    async with pool.acquire() as conn:
        while await project_batch(conn) < head:
            pass
        live, indexes = await snapshot(conn), await conn.fetch(INDEXES)
        assert len(live["incident_versions"]) == 12  # 11 reports, a correction opens another
    assert await rebuild(dsn) == head
    async with pool.acquire() as conn:
        assert await snapshot(conn) == live
        assert await conn.fetch(INDEXES) == indexes
        assert await checkpoint(conn) == head


async def test_a_rebuild_under_a_running_server_hands_over_to_its_projector(
    dsn: str, client: AsyncTestClient[Any]
) -> None:
    first = await client.post("/v1/incidents", json=expulsion(count=4))
    assert await rebuild(dsn) >= int(first.headers["legation-position"])
    second = await client.post("/v1/incidents", json=expulsion(count=6))
    standing = await client.get(
        "/v1/countries/RU", params={"min_position": second.headers["legation-position"]}
    )
    assert standing.status_code == 200
    assert standing.json()["expulsions"]["expelled_foreign_diplomats"] == 10
