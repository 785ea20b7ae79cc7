"""The projector: rows and checkpoint in one transaction, one active per database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.log.doorbell import Doorbell
from service.log.store import read_all
from service.projections import versions
from service.projections.projector import Projector, checkpoint, project_batch


async def test_a_crashed_batch_is_applied_once_on_resume(
    dsn: str, pool: asyncpg.Pool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.ops.demo import load_demo

    await load_demo(dsn)
    real_apply = versions.apply

    async def apply_then_crash(conn: Any, transitions: Any) -> None:
        await real_apply(conn, transitions)
        raise ConnectionResetError("killed mid-batch")

    # Killed after both read models were written, before the checkpoint moved.
    monkeypatch.setattr(versions, "apply", apply_then_crash)
    async with pool.acquire() as conn:
        with pytest.raises(ConnectionResetError):
            await project_batch(conn, limit=4)
        assert await checkpoint(conn) == 0
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0
        assert await conn.fetchval("SELECT count(*) FROM incident_versions") == 0
    monkeypatch.setattr(versions, "apply", real_apply)
    async with pool.acquire() as conn:
        assert await project_batch(conn, limit=4) == 4
        assert await project_batch(conn, limit=4) == 8
        assert await project_batch(conn, limit=4) == 10  # the demo's last report
        assert await project_batch(conn, limit=4) == 10
        rows = await conn.fetch("SELECT version, position FROM incidents ORDER BY position")
        log = await read_all(conn, 0, 100)
        opened = await conn.fetch("SELECT valid_from FROM incident_versions ORDER BY valid_from")
    assert [(r[0], r[1]) for r in rows] == [(1, e.position) for e in log]
    assert [r[0] for r in opened] == [e.position for e in log]


async def test_only_one_of_two_projectors_is_active_and_the_other_takes_over(
    dsn: str, pool: asyncpg.Pool[Any]
) -> None:
    doorbells = [Doorbell(dsn), Doorbell(dsn)]
    projectors = [Projector(pool, dsn, bell) for bell in doorbells]
    for bell in doorbells:
        bell.start()
    for projector in projectors:
        projector.start()
    try:
        for _ in range(100):
            if any(p.active for p in projectors):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert [p.active for p in projectors].count(True) == 1
        active = next(p for p in projectors if p.active)
        standby = next(p for p in projectors if not p.active)
        await active.stop()
        for _ in range(100):
            if standby.active:
                break
            await asyncio.sleep(0.05)
        assert standby.active
    finally:
        for projector in projectors:
            await projector.stop()
        for bell in doorbells:
            await bell.stop()
