"""The fan-out behind GET /v1/events/stream, on the database without HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import pytest


async def test_a_subscriber_that_falls_behind_catches_up_from_the_database(
    dsn: str, pool: asyncpg.Pool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:

    from service.log.doorbell import Doorbell
    from service.log.store import LogFilter, append
    from service.subscribers import fanout as fanning
    from service.subscribers.event_stream import event_stream
    from tests.factories import event, stream

    monkeypatch.setattr(fanning, "QUEUE_BATCHES", 1)
    doorbell = Doorbell(dsn)
    doorbell.start()
    fan = fanning.Fanout(pool, doorbell)
    await fan.start()
    messages = event_stream(pool, fan, 0, LogFilter(), heartbeat=0.2)
    try:
        assert await anext(messages) == b"retry: 2000\n\n: connected\n\n"  # retry: first
        first = asyncio.ensure_future(anext(messages))  # subscribes, then waits
        await asyncio.sleep(0.2)
        for n in range(1, 6):  # five appends, five fan-out batches, one queue slot
            async with pool.acquire() as conn:
                await append(conn, stream(), 0, [event(n)])
            await asyncio.sleep(0.15)
        # Nobody consumed meanwhile: the one-batch queue overflowed.
        assert [sub.behind for sub in fan._followers] == [True]
        received = [await first]
        while len(message_ids(received)) < 5:
            received.append(await asyncio.wait_for(anext(messages), 5))
    finally:
        await messages.aclose()
        await fan.stop()
        await doorbell.stop()
    assert message_ids(received) == [1, 2, 3, 4, 5]


def message_ids(chunks: list[bytes]) -> list[int]:
    """The `id:` of every message in the chunks sent (a chunk may hold several)."""
    lines = b"".join(chunks).split(b"\n")
    return [int(line.removeprefix(b"id: ")) for line in lines if line.startswith(b"id: ")]


async def test_what_is_appended_during_a_pass_goes_with_the_batch_to_whoever_is_not_yet_passed(
    pool: asyncpg.Pool[Any],
) -> None:
    from service.log.doorbell import Bell
    from service.log.store import LogFilter, append, head_position
    from service.subscribers.fanout import SLICE, Fanout
    from tests.factories import event, stream

    bell = Bell()  # rung by hand: the test decides when the log has grown
    fan = Fanout(pool, bell)
    async with pool.acquire() as conn:
        fan.head = await head_position(conn)
    writes: list[list[bytes]] = [[] for _ in range(2 * SLICE + 1)]
    with contextlib.ExitStack() as subscribed:
        for sent in writes:
            follower = subscribed.enter_context(fan.subscribe(fan.head, LogFilter(), 60))
            follower.direct = lambda chunk, _framed, sent=sent: sent.append(chunk)
        async with pool.acquire() as conn:
            first = (await append(conn, stream(), 0, [event(1)])).positions[0]
        rung = bell.rings
        batch = await fan._read(fan.head)
        assert batch is not None
        fan.head = batch.last
        async with pool.acquire() as conn:  # committed while the batch is being offered
            second = (await append(conn, stream(), 0, [event(2)])).positions[0]
        bell.ring()
        await fan._offer(batch, rung)
        # The first slice had the batch before the append; the rest had both in one write.
        passes = sorted(message_ids(sent) for sent in writes)
        assert passes == [[first]] * SLICE + [[first, second]] * (SLICE + 1)
        assert all(len(sent) == 1 for sent in writes)
        async with pool.acquire() as conn:
            third = (await append(conn, stream(), 0, [event(3)])).positions[0]
        await fan._deliver_new()  # the next pass: the rest is sent what it lacks, only that
    assert all(len(sent) == 2 for sent in writes)
    assert [message_ids(sent) for sent in writes] == [[first, second, third]] * len(writes)
