"""The answer cache: bounded in bytes, least recently used first, live answers dropped as the
read models move on."""

from __future__ import annotations

import asyncio

from service.projections.answer_cache import (
    ENTRY_OVERHEAD,
    AnswerCache,
    Cached,
    Previous,
    Remembered,
    cached,
)

KIB = 1024


def body(n: int, fill: bytes = b"x") -> bytes:
    return fill * n


def test_it_holds_no_more_bytes_than_its_capacity() -> None:
    cache = AnswerCache(64 * KIB)
    for i in range(200):
        cache.put(("timeline", i), cached(body(4 * KIB)))
        assert cache.size <= 64 * KIB
    # 4 KiB bodies plus their keys and overhead: at most 15 fit in 64 KiB.
    assert 10 <= len(cache) <= 15
    assert cache.get(("timeline", 199)) is not None
    assert cache.get(("timeline", 0)) is None


def test_size_counts_body_headers_and_key() -> None:
    cache = AnswerCache(1 << 20)
    key = ("edge", "/v1/countries/RU", b"as_of=2022-01-01")
    cache.put(key, Remembered(7, [(b"content-type", b"application/json")], body(1000)), 7)
    assert cache.size == 1000 + len(b"content-typeapplication/json") + len(repr(key)) + (
        ENTRY_OVERHEAD
    )


def test_the_least_recently_used_goes_first() -> None:
    cache = AnswerCache(3 * (KIB + ENTRY_OVERHEAD + 40))
    for name in ("a", "b", "c"):
        cache.put(name, cached(body(KIB)))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("d", cached(body(KIB)))
    assert cache.get("b") is None
    assert all(cache.get(name) is not None for name in ("a", "c", "d"))


def test_an_answer_bigger_than_the_whole_cache_is_not_kept() -> None:
    cache = AnswerCache(10 * KIB)
    cache.put("small", cached(body(KIB)))
    cache.put("huge", cached(body(20 * KIB)))
    assert cache.get("huge") is None
    assert cache.get("small") is not None


def test_replacing_an_answer_does_not_count_it_twice() -> None:
    cache = AnswerCache(1 << 20)
    cache.put("a", cached(body(KIB)))
    size = cache.size
    cache.put("a", cached(body(KIB, b"y")))
    assert cache.size == size
    assert len(cache) == 1


def test_live_answers_of_positions_left_behind_are_dropped() -> None:
    cache = AnswerCache(1 << 20)
    cache.put(("live", 1), cached(body(KIB)), live_at=5)
    cache.put(("pinned", 1), cached(body(KIB)))  # an explicit known_at: stays
    cache.advance(6)
    assert cache.get(("live", 1)) is None
    assert cache.get(("pinned", 1)) is not None
    assert len(cache) == 1
    cache.put(("live", 2), cached(body(KIB)), live_at=5)  # computed before the move
    assert cache.get(("live", 2)) is None
    cache.put(("live", 3), cached(body(KIB)), live_at=7)  # a newer live answer moves it too
    assert cache.get(("live", 3)) is not None


def test_a_capacity_of_zero_keeps_nothing() -> None:
    cache = AnswerCache(0)
    cache.put("a", cached(b"{}"))
    cache.put("b", Remembered(1, [], b"{}"), live_at=1)
    assert cache.get("a") is None
    assert cache.get("b") is None
    assert cache.size == 0


def test_clear_forgets_everything() -> None:
    cache = AnswerCache(1 << 20)
    cache.put("a", cached(b"{}"), live_at=3)
    cache.put("b", cached(b"{}"))
    cache.clear()
    assert len(cache) == 0
    assert cache.size == 0
    cache.put("c", cached(b"{}"), live_at=3)  # a rebuild leaves positions where they were
    assert cache.get("c") is not None


async def test_callers_asking_at_once_share_one_computation() -> None:
    cache = AnswerCache(1 << 20)
    made: list[int] = []

    async def make() -> str:
        made.append(1)
        await asyncio.sleep(0.01)
        return "answer"

    answers = await asyncio.gather(*(cache.once("key", make) for _ in range(16)))
    assert answers == ["answer"] * 16
    assert len(made) == 1
    assert await cache.once("key", make) == "answer"  # done: a later caller makes it anew
    assert len(made) == 2


async def test_a_failed_computation_fails_every_caller_and_is_not_kept() -> None:
    cache = AnswerCache(1 << 20)

    async def fail() -> str:
        await asyncio.sleep(0.01)
        raise ConnectionResetError("gone")

    results = await asyncio.gather(
        *(cache.once("key", fail) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, ConnectionResetError) for result in results)

    async def make() -> str:
        return "answer"

    assert await cache.once("key", make) == "answer"


async def test_a_caller_that_leaves_does_not_cancel_the_others() -> None:
    cache = AnswerCache(1 << 20)

    async def make() -> str:
        await asyncio.sleep(0.05)
        return "answer"

    leaving = asyncio.ensure_future(cache.once("key", make))
    staying = asyncio.ensure_future(cache.once("key", make))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == "answer"


async def test_the_previous_answer_is_offered_only_while_a_newer_one_is_made() -> None:
    cache = AnswerCache(1 << 20)
    release = asyncio.Event()

    async def answer_at(n: int) -> Cached:
        await release.wait()
        return cached(body(10, str(n).encode()))

    assert cache.previous("q", 0) is None
    release.set()
    await cache.refresh("q", 5, lambda: answer_at(5))
    assert cache.previous("q", 0) is None  # nothing is being made: callers compute
    release.clear()
    making = asyncio.ensure_future(cache.refresh("q", 9, lambda: answer_at(9)))
    await asyncio.sleep(0)
    offered = cache.previous("q", 0)
    assert offered is not None
    assert offered.position == 5
    assert offered.answer.body == body(10, b"5")
    assert cache.previous("q", 6) is None  # older than the caller's min_position
    assert cache.previous("other", 0) is None
    release.set()
    await making
    release.clear()
    older = asyncio.ensure_future(cache.refresh("q", 7, lambda: answer_at(7)))
    await asyncio.sleep(0)
    newest = cache.previous("q", 0)
    assert newest is not None
    assert newest.position == 9
    release.set()
    await older
    kept = cache.previous("q", 0)
    assert kept is None  # done; and 7 never replaced the newer 9:
    assert cache.get(("previous", "q")) == Previous(9, cached(body(10, b"9")))


async def test_an_answer_made_across_a_rebuild_is_not_offered() -> None:
    cache = AnswerCache(1 << 20)

    async def made_while_rebuilding() -> Cached:
        cache.clear()
        return cached(b"old tables")

    await cache.refresh("q", 3, made_while_rebuilding)
    assert cache.get(("previous", "q")) is None
