"""Answers kept in memory: one LRU per process, bounded in bytes, shared by the edge and standings.

A standing at a given log position (and as_of date) never changes, so its body
and ETag can be kept as long as anyone asks. What bounds them is their size, not
their number: a count bound let a few hundred distinct `as_of` values of a big
list hold gigabytes. Live answers (computed at the position the read models
were at) are useless once the read models move on, so they are dropped then;
answers pinned to an explicit past position stay until evicted. A rebuild
changes what every position answers, so it clears everything.

While a live answer is being computed, the last one computed for the same
question (`Previous`) answers the readers who come meanwhile: under steady
ingest the read models move on every few milliseconds and an aggregate over a
big log takes longer than that, so without it every reader waited for a fresh
computation of its own (issue 17 measured 8 to 22 standings a second).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar

import msgspec

T = TypeVar("T")
# What a kept entry costs beyond its bytes: the dict slot, the struct, the key tuple.
ENTRY_OVERHEAD: Final = 256


class Cached(msgspec.Struct, frozen=True):
    """An encoded JSON body, its ETag and the cursor of the page after it (a standing)."""

    body: bytes
    etag: str
    next_cursor: str | None = None


class Remembered(msgspec.Struct, frozen=True):
    """A complete 200 answer and the log position it holds (the edge's)."""

    position: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Previous(msgspec.Struct, frozen=True):
    """The newest live answer computed for a question, and the position it holds."""

    position: int
    answer: Cached


Answer = Cached | Remembered | Previous


def cached(body: bytes, next_cursor: str | None = None) -> Cached:
    """A body with its content-derived (strong) ETag."""
    return Cached(body, f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"', next_cursor)


def _size(key: Hashable, answer: Answer) -> int:
    if isinstance(answer, Previous):
        return _size(key, answer.answer)
    if isinstance(answer, Cached):
        extra = len(answer.etag) + len(answer.next_cursor or "")
    else:
        extra = sum(len(name) + len(value) for name, value in answer.headers)
    return len(answer.body) + extra + len(repr(key)) + ENTRY_OVERHEAD


class Entry(msgspec.Struct):
    """One kept answer, its size, and the live position it answered for (None: pinned)."""

    answer: Answer
    size: int
    live_at: int | None


class AnswerCache:
    """An LRU of answers holding at most `capacity` bytes (0: keeps nothing)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._live: dict[int, set[Hashable]] = {}  # live position -> keys answered there
        self._head = 0  # the newest live position seen
        self.generation = 0  # grows at each clear: answers computed before it are not kept
        self._making: dict[Hashable, asyncio.Future[Any]] = {}
        self._refreshing: dict[Hashable, int] = {}  # question -> live computations running

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Answer | None:
        """The answer kept for `key`, if any (and mark it recently used)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.answer

    def put(
        self,
        key: Hashable,
        answer: Answer,
        live_at: int | None = None,
        generation: int | None = None,
    ) -> None:
        """Keep `answer`; `live_at` is the read models' position when it is a live answer,
        `generation` the cache's when its computation started (None: not checked)."""
        if generation is not None and generation != self.generation:
            return  # computed (perhaps) from the tables a rebuild has since replaced
        if live_at is not None:
            self.advance(live_at)
            if live_at < self._head:
                return  # already left behind
        size = _size(key, answer)
        if size > self.capacity:
            return
        self._drop(key)
        self._entries[key] = Entry(answer, size, live_at)
        self.size += size
        if live_at is not None:
            self._live.setdefault(live_at, set()).add(key)
        while self.size > self.capacity:
            self._drop(next(iter(self._entries)))

    async def once(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        """`make()`, run once for every caller that asks for `key` while it runs.

        When the read models move, every reader misses the answer at once; without
        this, each would compute the same answer (under batch ingest a standby served
        4 requests a second that way). The computation outlives a caller that leaves.
        """
        making = self._making.get(key)
        if making is None:
            making = asyncio.ensure_future(make())
            self._making[key] = making
            making.add_done_callback(lambda _: self._making.pop(key, None))
        result: T = await asyncio.shield(making)
        return result

    def previous(self, question: Hashable, floor: int) -> Previous | None:
        """The last live answer to `question` at `floor` or later, while a newer one is
        being computed (None otherwise: the caller computes or waits)."""
        if not self._refreshing.get(question):
            return None
        kept = self.get(("previous", question))
        return kept if isinstance(kept, Previous) and kept.position >= floor else None

    async def refresh(
        self, question: Hashable, position: int, make: Callable[[], Awaitable[Cached]]
    ) -> Cached:
        """`make()`, a live answer to `question` at `position`, kept as its Previous when
        it is the newest (a rebuild meanwhile makes it unknown, so it is not kept)."""
        generation = self.generation
        self._refreshing[question] = self._refreshing.get(question, 0) + 1
        try:
            made = await make()
        finally:
            if running := self._refreshing[question] - 1:
                self._refreshing[question] = running
            else:
                del self._refreshing[question]
        kept = self.get(("previous", question))
        if generation == self.generation and (
            not isinstance(kept, Previous) or kept.position < position
        ):
            self.put(("previous", question), Previous(position, made))
        return made

    @property
    def head(self) -> int:
        """The newest position the read models are known to have reached."""
        return self._head

    def advance(self, position: int) -> None:
        """The read models reached `position`: live answers from before it are stale."""
        if position <= self._head:
            return
        self._head = position
        for left in [p for p in self._live if p < position]:
            for key in self._live.pop(left):
                self._drop(key)

    def restart(self) -> None:
        """Forget every answer and position: the app starts (again) on a log of its own."""
        self.clear()
        self._head = 0

    def clear(self) -> None:
        """Forget every answer (after a rebuild every position may answer differently)."""
        self._entries.clear()
        self._live.clear()
        self.size = 0
        self.generation += 1

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.size -= entry.size
        if entry.live_at is not None and (keys := self._live.get(entry.live_at)) is not None:
            keys.discard(key)
            if not keys:
                del self._live[entry.live_at]
