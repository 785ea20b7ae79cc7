"""The fold of `legation rebuild`: the log up to its head, into read-model rows as each is final.

An incident's rows are final once its last event up to the head is folded, so
they go out at once, as COPY rows: memory holds only incidents with events
still to come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from service.incidents.domain import IncidentState, evolve
from service.log.envelope import FoldedEvent
from service.log.store import read_folded
from service.projections import incident_list as incidents
from service.projections import versions
from service.projections.versions import Changes, Transition

if TYPE_CHECKING:
    import asyncpg

    Chunks = asyncio.Queue[bytes | None]  # rows in COPY's binary format; None ends them

FOLD_PAGE: Final = 5_000

# Which version of each stream is its last up to the head; a stream missing here
# has one event. Up to there, each incident's rows are final and can be written.
LAST_VERSIONS: Final = """
SELECT stream, max(version) FROM events
 WHERE version > 1 AND position <= $1 {streams} GROUP BY stream
"""
# The rows one page of the fold made (incidents, incident_versions) and the position it reached.
Deliver = Callable[[bytes, bytes, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Part:
    """One of `count` disjoint sets of the log's streams, by a hash of their names.

    An incident's rows depend on its own events only, so parts fold apart, each
    in a process (and on a core) of its own.
    """

    index: int
    count: int

    @property
    def streams(self) -> str:
        """The SQL condition on `events` that keeps this part's streams."""
        if self.count == 1:
            return ""
        # Integers, never text from outside: formatted into the query, not bound.
        return f"AND (hashtext(stream) & 2147483647) % {self.count:d} = {self.index:d}"


WHOLE: Final = Part(0, 1)


class Fold:
    """The log up to a head folded with the projector's code, into COPY rows as each is final."""

    def __init__(self, head: int, part: Part, last_versions: dict[str, int]) -> None:
        self.head, self.part, self.position = head, part, 0
        self._last_versions = last_versions
        self._states: dict[str, IncidentState] = {}  # by stream name: no UUID parsing
        self._changes = Changes()
        self._incident_rows: list[bytes] = []
        self._version_rows: list[bytes] = []

    def apply(self, events: list[FoldedEvent]) -> None:
        """Fold the next events of the log."""
        states, last_versions, changes = self._states, self._last_versions, self._changes
        no_stored_rows: dict[str, tuple[int, int]] = {}
        for event in events:
            key = event.stream
            if event.version == 1 and key not in last_versions:
                self._reported_only(event)  # most incidents: nothing to keep or close
                continue
            before = states.pop(key, None)
            after = evolve(before, event)
            closed = changes.step(Transition(event, before, after), no_stored_rows)
            if closed is not None:
                self._version_rows.append(versions.copy_row(closed))
            if event.version < last_versions.get(key, 1):
                states[key] = after
                continue
            self._incident_rows.append(incidents.copy_row(after, event.position))
            if (current := changes.opened.pop(key, None)) is not None:
                self._version_rows.append(versions.copy_row(current))
        changes.new_rows.clear()  # each row is written once final, not kept
        self.position = events[-1].position

    def _reported_only(self, event: FoldedEvent) -> None:
        """The rows of an incident whose report is its only event up to the head."""
        state = evolve(None, event)
        self._incident_rows.append(incidents.copy_row(state, event.position))
        version = versions.Version(state.id, event.position, None, event.position, state.incident)
        self._version_rows.append(versions.copy_row(version))

    def take_rows(self) -> tuple[bytes, bytes]:
        """The incidents and incident_versions rows written since the last call."""
        taken = b"".join(self._incident_rows), b"".join(self._version_rows)
        self._incident_rows.clear()
        self._version_rows.clear()
        return taken

    @property
    def unsettled(self) -> int:
        """Incidents still waiting for events the head holds: none once the fold has read it."""
        return len(self._states)


async def _read(conn: asyncpg.Connection[Any], fold: Fold, after: int) -> list[FoldedEvent]:
    """The next page of the part's events up to the head, as the fold reads them."""
    return await read_folded(conn, after, FOLD_PAGE, fold.head, fold.part.streams)


async def fold_into(conn: asyncpg.Connection[Any], fold: Fold, deliver: Deliver) -> None:
    """Fold the part's log up to the head, delivering each page's rows as they are made."""
    ahead = asyncio.create_task(_read(conn, fold, fold.position))
    try:
        while events := await ahead:
            ahead = asyncio.create_task(_read(conn, fold, events[-1].position))
            await asyncio.sleep(0)  # the next page's query goes out before the fold takes the CPU
            fold.apply(events)
            await deliver(*fold.take_rows(), fold.position)
    finally:
        ahead.cancel()
    if fold.unsettled:
        # Positions commit in order (DESIGN.md, invariant 2), so this means that broke.
        raise RuntimeError(
            f"the log up to position {fold.head} changed while it was folded:"
            f" {fold.unsettled} incidents never reached their last event"
        )
    await deliver(b"", b"", fold.head)  # no rows: the part is done up to the head


async def start_fold(conn: asyncpg.Connection[Any], head: int, part: Part) -> Fold:
    """A fold of the part's streams up to `head` (what comes later is caught up after)."""
    rows = await conn.fetch(LAST_VERSIONS.format(streams=part.streams), head)
    if part.count > 1:
        # The planner guesses a part's hash condition keeps 0.5 % of the rows, and
        # would sort the whole log, or start parallel workers, for a page.
        await conn.execute("SET enable_seqscan = off; SET max_parallel_workers_per_gather = 0")
    return Fold(head, part, {row[0]: row[1] for row in rows})
