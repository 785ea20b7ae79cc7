"""The log on a real PostgreSQL: ordering, concurrency checks, idempotency, immutability."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.incidents.batch_handler import CHUNK_LINES, SUBTRANSACTIONS_KEPT
from service.incidents.batches import MAX_LINES
from service.log.database import connect
from service.log.store import (
    Appended,
    AppendRequest,
    EventIdReused,
    LogFilter,
    WrongExpectedVersion,
    append,
    append_many,
    head_position,
    read_all,
    read_stream,
)
from tests.factories import event, stream

WRITERS, APPENDS = 20, 50
ORDERING_LOCK = "PERFORM pg_advisory_xact_lock(1818585454, 1);"


async def _write(dsn: str, appends: int) -> None:
    conn = await connect(dsn)
    name = stream()
    try:
        for version in range(appends):
            await append(conn, name, version, [event(version)])
    finally:
        await conn.close()


async def _race(dsn: str) -> tuple[list[int], list[int]]:
    """Concurrent writers and a reader tailing with after=; (seen, stored) positions."""
    reader = await connect(dsn)
    seen: list[int] = []
    writers = asyncio.gather(*(_write(dsn, APPENDS) for _ in range(WRITERS)))
    after = 0
    try:
        while True:
            finished = writers.done()
            page = await read_all(reader, after, 500)
            seen += [recorded.position for recorded in page]
            after = page[-1].position if page else after
            if finished and not page:
                break
        await writers
        stored = [r[0] for r in await reader.fetch("SELECT position FROM events ORDER BY 1")]
    finally:
        await reader.close()
    return seen, stored


async def test_a_tailing_reader_sees_every_position_once_in_order(dsn: str) -> None:
    seen, stored = await _race(dsn)
    assert len(stored) == WRITERS * APPENDS
    assert seen == stored


async def test_without_the_ordering_lock_the_tailing_reader_misses_events(dsn: str) -> None:
    # The same race with the lock cut out of append_events (in this test's own
    # database only) shows the previous test can fail: positions then commit out
    # of order and the reader pages past events that commit later.
    conn = await asyncpg.connect(dsn)
    definition = await conn.fetchval("SELECT pg_get_functiondef('append_events'::regproc)")
    assert ORDERING_LOCK in definition
    await conn.execute(definition.replace(ORDERING_LOCK, ""))
    await conn.close()
    for _ in range(5):
        seen, stored = await _race(dsn)
        if set(seen) != set(stored):
            break
    assert set(seen) < set(stored)


async def test_a_stale_expected_version_is_refused_and_writes_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    name = stream()
    async with pool.acquire() as conn:
        await append(conn, name, 0, [event(1), event(2)])
        with pytest.raises(WrongExpectedVersion) as refused:
            await append(conn, name, 1, [event(3)])
        assert (refused.value.expected, refused.value.actual) == (1, 2)
        assert [e.version for e in await read_stream(conn, name)] == [1, 2]
        assert await head_position(conn) == 2


async def test_a_new_stream_must_not_exist_when_zero_is_expected(pool: asyncpg.Pool[Any]) -> None:
    name = stream()
    async with pool.acquire() as conn:
        await append(conn, name, 0, [event()])
        with pytest.raises(WrongExpectedVersion):
            await append(conn, name, 0, [event()])


async def test_reappending_the_same_events_returns_the_stored_positions(
    pool: asyncpg.Pool[Any],
) -> None:
    name, events = stream(), [event(1), event(2)]
    async with pool.acquire() as conn:
        first = await append(conn, name, 0, events)
        await append(conn, name, 2, [event(3)])
        again = await append(conn, name, 0, events)
        assert not first.duplicate
        assert again.duplicate
        assert (again.positions, again.versions) == (first.positions, first.versions)
        assert await head_position(conn) == 3


async def test_the_same_event_id_with_other_content_is_refused(pool: asyncpg.Pool[Any]) -> None:
    name, original = stream(), event(1)
    async with pool.acquire() as conn:
        await append(conn, name, 0, [original])
        with pytest.raises(EventIdReused):
            await append(conn, name, None, [event(2, id=original.id)])
        with pytest.raises(EventIdReused):
            await append(conn, stream(), None, [event(1, id=original.id)])
        assert await head_position(conn) == 1


async def test_one_refused_request_in_a_group_fails_only_itself(pool: asyncpg.Pool[Any]) -> None:
    taken = stream()
    async with pool.acquire() as conn:
        await append(conn, taken, 0, [event()])
        outcomes = await append_many(
            conn,
            [
                AppendRequest(stream(), 0, (event(1),)),
                AppendRequest(taken, 0, (event(2),)),
                AppendRequest(stream(), None, (event(3), event(4))),
            ],
        )
    ok_one, refused, ok_two = outcomes
    assert isinstance(refused, WrongExpectedVersion)
    assert isinstance(ok_one, Appended)
    assert ok_one.positions == (2,)
    assert isinstance(ok_two, Appended)
    assert ok_two.positions == (3, 4)
    assert ok_two.versions == (1, 2)


async def test_read_all_filters_by_type_and_country(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        await append(conn, stream(), 0, [event(1, type="a.happened", countries=("RU", "NL"))])
        await append(conn, stream(), 0, [event(2, type="b.happened", countries=("BE",))])
        await append(conn, stream(), 0, [event(3, type="a.happened", countries=("BE",))])
        by_type = await read_all(conn, 0, 10, LogFilter(types=("a.happened",)))
        by_country = await read_all(conn, 0, 10, LogFilter(countries=("BE",)))
        both = await read_all(conn, 0, 10, LogFilter(("a.happened",), ("BE",)))
        paged = await read_all(conn, 1, 1)
    assert [e.position for e in by_type] == [1, 3]
    assert [e.position for e in by_country] == [2, 3]
    assert [e.position for e in both] == [3]
    assert [e.position for e in paged] == [2]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'edited'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE events SET data = '{}' WHERE position = -1",
    ],
)
async def test_the_log_cannot_be_edited(pool: asyncpg.Pool[Any], statement: str) -> None:
    async with pool.acquire() as conn:
        await append(conn, stream(), 0, [event()])
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
        # Not even with ordinary triggers switched off for replication.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM events WHERE type <> 'edited'") == 1


async def test_an_append_rings_the_doorbell_at_commit(dsn: str, pool: asyncpg.Pool[Any]) -> None:
    listener = await asyncpg.connect(dsn)
    rung: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("legation_events", lambda *args: rung.put_nowait(args[3]))
    try:
        async with pool.acquire() as conn:
            await append(conn, stream(), 0, [event(), event()])
        assert await asyncio.wait_for(rung.get(), 5) == "2"
    finally:
        await listener.close()


async def test_a_group_touching_one_stream_twice_is_decided_in_turn(
    pool: asyncpg.Pool[Any],
) -> None:
    name, other = stream(), stream()
    async with pool.acquire() as conn:
        outcomes = await append_many(
            conn,
            [
                AppendRequest(name, 0, (event(1),)),
                AppendRequest(name, 1, (event(2), event(3))),
                AppendRequest(name, 1, (event(4),)),
                AppendRequest(other, 0, (event(5),)),
            ],
        )
        stored = await read_stream(conn, name)
    first, second, stale, last = outcomes
    assert isinstance(first, Appended)
    assert (first.positions, first.versions) == ((1,), (1,))
    assert isinstance(second, Appended)
    assert (second.positions, second.versions) == ((2, 3), (2, 3))
    assert isinstance(stale, WrongExpectedVersion)
    assert stale.actual == 3
    assert isinstance(last, Appended)
    assert last.positions == (4,)
    assert [(e.position, e.version) for e in stored] == [(1, 1), (2, 2), (3, 3)]


async def test_a_group_numbers_positions_in_request_and_event_order(
    pool: asyncpg.Pool[Any],
) -> None:
    names = [stream() for _ in range(4)]
    async with pool.acquire() as conn:
        await append(conn, names[1], 0, [event(0)])
        outcomes = await append_many(
            conn,
            [
                AppendRequest(names[0], 0, (event(1), event(2))),
                AppendRequest(names[1], 0, (event(3),)),  # stale: refused
                AppendRequest(names[2], None, (event(4), event(5), event(6))),
                AppendRequest(names[3], 0, (event(7),)),
            ],
        )
        log = await read_all(conn, 0, 100)
    assert [o.positions for o in outcomes if isinstance(o, Appended)] == [
        (2, 3),
        (4, 5, 6),
        (7,),
    ]
    assert [(e.position, e.stream, e.version) for e in log[1:]] == [
        (2, names[0], 1),
        (3, names[0], 2),
        (4, names[2], 1),
        (5, names[2], 2),
        (6, names[2], 3),
        (7, names[3], 1),
    ]


TRACK_CALLS = "SET LOCAL track_functions = 'pl'"


async def _calls(conn: Any) -> dict[str, int]:
    """The log's functions called so far in this transaction (after TRACK_CALLS)."""
    rows = await conn.fetch(
        "SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE funcname LIKE 'append%'"
    )
    return {row[0]: row[1] for row in rows}


async def _log(conn: asyncpg.Connection[Any] | Any) -> list[tuple[Any, ...]]:
    rows = await conn.fetch("SELECT position, id, stream, version, data FROM events ORDER BY 1")
    return [tuple(row) for row in rows]


async def test_a_group_of_new_streams_appends_without_looking_up(
    pool: asyncpg.Pool[Any],
) -> None:
    names = [stream() for _ in range(3)]
    requests = [AppendRequest(name, 0, (event(i), event(i + 10))) for i, name in enumerate(names)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(TRACK_CALLS)
        outcomes = await append_many(conn, requests)
        calls = await _calls(conn)
        log = await read_all(conn, 0, 100)
    assert calls == {"append_new_streams": 1}
    assert [(o.positions, o.versions) for o in outcomes if isinstance(o, Appended)] == [
        ((1, 2), (1, 2)),
        ((3, 4), (1, 2)),
        ((5, 6), (1, 2)),
    ]
    assert [(e.stream, e.version) for e in log] == [(n, v) for n in names for v in (1, 2)]


async def test_new_streams_meeting_a_stored_stream_or_id_are_decided_like_any_group(
    pool: asyncpg.Pool[Any],
) -> None:
    taken, resent, known = stream(), stream(), event(1)
    async with pool.acquire() as conn:
        await append(conn, taken, 0, [event(0)])
        await append(conn, resent, 0, [known])
        before = await _log(conn)
        fresh = [stream(), stream()]
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(TRACK_CALLS)
        outcomes = await append_many(
            conn,
            [
                AppendRequest(fresh[0], 0, (event(2),)),
                AppendRequest(taken, 0, (event(3),)),  # the stream exists: stale
                AppendRequest(resent, 0, (known,)),  # sent again: a duplicate
                AppendRequest(fresh[1], 0, (event(4),)),
            ],
        )
        calls = await _calls(conn)
        await transaction.commit()
        after = await _log(conn)
    assert calls == {"append_new_streams": 1, "append_events": 1}
    first, stale, duplicate, last = outcomes
    assert isinstance(stale, WrongExpectedVersion)
    assert isinstance(duplicate, Appended)
    assert duplicate.duplicate
    assert duplicate.positions == (2,)
    assert isinstance(first, Appended)
    assert isinstance(last, Appended)
    # Nothing of the undone insert remains; the two new streams follow in order.
    assert after[: len(before)] == before
    assert [row[2] for row in after[len(before) :]] == fresh
    assert first.positions[0] < last.positions[0]
    assert [row[0] for row in after[len(before) :]] == [*first.positions, *last.positions]


async def test_the_fast_way_in_takes_only_groups_that_expect_new_streams(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="expect version 0"):
            await conn.fetch(
                "SELECT * FROM append_new_streams($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                [0],
                [stream()],
                [None],
                [event(1).id],
                ["t"],
                [1],
                [None],
                [""],
                ["{}"],
                ["{}"],
            )


async def test_new_streams_meeting_a_position_already_handed_out_fail_loudly(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        for position in (1, 4, 10):  # a log with holes, as crashed calls leave
            await conn.execute("SELECT setval('events_position_seq', $1, false)", position)
            await append(conn, stream(), 0, [event(position)])
        # As after a restore that left the sequence behind the log: the next block
        # (2-4) meets 4; appending after it (5-7) would slip in below 10.
        await conn.execute("SELECT setval('events_position_seq', 1)")
        with pytest.raises(asyncpg.UniqueViolationError, match="events_pkey"):
            await append_many(conn, [AppendRequest(stream(), 0, (event(n),)) for n in range(3)])
        assert [e.position for e in await read_all(conn, 0, 10)] == [1, 4, 10]


def test_a_whole_batch_stays_within_the_subtransactions_a_transaction_keeps() -> None:
    assert -(-MAX_LINES // CHUNK_LINES) < SUBTRANSACTIONS_KEPT
