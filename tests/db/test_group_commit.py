"""Group commit: concurrent appends share transactions, each keeps its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.log.group_commit import GroupCommit
from service.log.store import (
    Appended,
    AppendRequest,
    EventIdReused,
    WrongExpectedVersion,
    append_many,
)
from tests.factories import event, stream


async def test_concurrent_appends_share_transactions(pool: asyncpg.Pool[Any]) -> None:
    appends = GroupCommit(pool)
    appends.start()
    try:
        results = await asyncio.gather(
            *(appends.append(stream(), 0, [event(i)]) for i in range(200))
        )
    finally:
        await appends.stop()
    positions = sorted(p for result in results for p in result.positions)
    assert positions == list(range(1, 201))
    # now() is the transaction's start: fewer distinct values than appends
    # means several appends committed in one transaction.
    async with pool.acquire() as conn:
        transactions = await conn.fetchval("SELECT count(DISTINCT recorded_at) FROM events")
    assert transactions < 100


async def test_a_conflict_fails_only_its_own_caller(pool: asyncpg.Pool[Any]) -> None:
    taken = stream()
    appends = GroupCommit(pool)
    appends.start()
    try:
        await appends.append(taken, 0, [event()])
        outcomes = await asyncio.gather(
            appends.append(stream(), 0, [event(1)]),
            appends.append(taken, 0, [event(2)]),
            appends.append(stream(), 0, [event(3)]),
            return_exceptions=True,
        )
    finally:
        await appends.stop()
    assert isinstance(outcomes[0], Appended)
    assert isinstance(outcomes[2], Appended)
    assert isinstance(outcomes[1], WrongExpectedVersion)
    assert outcomes[1].actual == 1


async def test_a_failed_group_reaches_every_caller(pool: asyncpg.Pool[Any]) -> None:
    appends = GroupCommit(pool)
    appends.start()
    async with pool.acquire() as conn:
        for name in ("append_events", "append_new_streams"):
            await conn.execute(f"ALTER FUNCTION {name} RENAME TO {name}_gone")
    try:
        outcomes = await asyncio.gather(
            *(appends.append(stream(), 0, [event(i)]) for i in range(3)), return_exceptions=True
        )
    finally:
        await appends.stop()
    assert all(isinstance(outcome, asyncpg.UndefinedFunctionError) for outcome in outcomes)


async def test_stopping_writes_what_is_queued_and_refuses_more(pool: asyncpg.Pool[Any]) -> None:
    appends = GroupCommit(pool)
    appends.start()
    pending = [asyncio.ensure_future(appends.append(stream(), 0, [event(i)])) for i in range(50)]
    await asyncio.sleep(0)
    await appends.stop()
    results = await asyncio.gather(*pending)
    assert sorted(r.positions[0] for r in results) == list(range(1, 51))
    with pytest.raises(RuntimeError, match="not running"):
        await appends.append(stream(), 0, [event()])


async def test_a_request_the_database_refuses_fails_alone(pool: asyncpg.Pool[Any]) -> None:
    appends = GroupCommit(pool)
    appends.start()
    try:
        # jsonb cannot hold NUL: the database refuses this one at insert time.
        poison = event(data={"text": "a\u0000b"})
        outcomes = await asyncio.gather(
            appends.append(stream(), 0, [event(1)]),
            appends.append(stream(), 0, [poison]),
            appends.append(stream(), 0, [event(2)]),
            return_exceptions=True,
        )
    finally:
        await appends.stop()
    assert isinstance(outcomes[0], Appended)
    assert isinstance(outcomes[1], asyncpg.PostgresError)
    assert isinstance(outcomes[2], Appended)


async def test_one_event_id_twice_in_a_group_is_refused_the_second_time(
    pool: asyncpg.Pool[Any],
) -> None:
    shared = event(1)
    async with pool.acquire() as conn:
        outcomes = await append_many(
            conn,
            [
                AppendRequest(stream(), 0, (shared,)),
                AppendRequest(stream(), 0, (event(1, id=shared.id),)),
            ],
        )
    assert isinstance(outcomes[0], Appended)
    assert isinstance(outcomes[1], EventIdReused)
