"""`rebuild` on the database: events appended while it runs are projected before the swap."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from service.ops.demo import load_demo
from service.projections.projector import checkpoint
from service.projections.rebuild import rebuild
from tests.factories import expulsion


async def test_events_appended_during_a_rebuild_are_projected_before_the_swap(
    dsn: str, pool: asyncpg.Pool[Any], monkeypatch: Any
) -> None:
    from service.incidents.catalogue import Report
    from service.incidents.domain import decide_report, report_event, stream_name
    from service.log.envelope import Metadata
    from service.log.store import append
    from service.projections import rebuild as rebuilding

    await load_demo(dsn)
    real_load = rebuilding._load_shadow

    async def load_then_append(conns: Any, fold: Any) -> None:
        await real_load(conns, fold)
        report = msgspec.convert(expulsion(expelled="PL", count=9), Report)
        incident_id, event = report_event(
            None, decide_report(report), Metadata(actor="t", correlation_id="t")
        )
        async with pool.acquire() as conn:
            await append(conn, stream_name(incident_id), 0, [event])

    monkeypatch.setattr(rebuilding, "_load_shadow", load_then_append)
    assert await rebuild(dsn) == 11
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 11
        assert (
            await conn.fetchval("SELECT sum(count) FROM incident_versions WHERE 'PL' = ANY(actors)")
            == 9
        )
        assert await checkpoint(conn) == 11
