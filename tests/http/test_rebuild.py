"""`legation rebuild`: fresh read models from the log, identical to the live ones."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.ops.demo import load_demo
from service.projections import rebuild_part
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


# In one part the fold runs in the rebuild's own process; in three, each in one of its own.
@pytest.mark.parametrize("parts", [1, 3])
async def test_a_rebuild_gives_the_same_rows_as_the_live_projection(
    dsn: str, client: AsyncTestClient[Any], pool: asyncpg.Pool[Any], parts: int
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
    assert await rebuild(dsn, parts=parts) == head
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


async def test_a_part_that_fails_fails_the_rebuild_and_the_live_tables_stay(
    dsn: str, pool: asyncpg.Pool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_demo(dsn)
    async with pool.acquire() as conn:
        head = await project_batch(conn)
        live = await snapshot(conn)
    # The parts look for the DSN under their own name for it: under another, they find none.
    monkeypatch.setattr(rebuild_part, "PART_DSN", "LEGATION_NOT_THE_PARTS_VARIABLE")
    with pytest.raises(RuntimeError, match=r"part \d of 2 of the rebuild failed \(exit status 1\)"):
        await rebuild(dsn, parts=2)
    async with pool.acquire() as conn:
        assert await snapshot(conn) == live
        assert await checkpoint(conn) == head
    monkeypatch.undo()
    assert await rebuild(dsn, parts=2) == head
