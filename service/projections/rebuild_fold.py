"""The fold of `legation rebuild`: the log up to its head, into read-model rows as each is final.

An incident's rows are final once its last event up to the head is folded, so
they go out at once, as COPY rows: memory holds only incidents with events
still to come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from service.incidents.domain import IncidentState, evolve
from service.log.envelope import FoldedEvent
from service.log.store import head_position, read_folded
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
SELECT stream, max(version) FROM events WHERE version > 1 AND position <= $1 GROUP BY stream
"""


class Fold:
    """The log up to a head folded with the projector's code, into COPY rows as each is final."""

    def __init__(
        self, head: int, last_versions: dict[str, int], on_progress: Callable[[int], None]
    ) -> None:
        self.head, self.position, self.on_progress = head, 0, on_progress
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


async def _read(conn: asyncpg.Connection[Any], after: int, head: int) -> list[FoldedEvent]:
    """The next page of events up to the head, as the fold reads them."""
    return await read_folded(conn, after, FOLD_PAGE, head)


async def fold_into(
    conn: asyncpg.Connection[Any], fold: Fold, outlets: tuple[Chunks, Chunks]
) -> None:
    """Fold the log up to the head, handing each page's rows to the tables' COPY."""
    ahead = asyncio.create_task(_read(conn, fold.position, fold.head))
    try:
        while events := await ahead:
            ahead = asyncio.create_task(_read(conn, events[-1].position, fold.head))
            await asyncio.sleep(0)  # the next page's query goes out before the fold takes the CPU
            fold.apply(events)
            for outlet, rows in zip(outlets, fold.take_rows(), strict=True):
                await outlet.put(rows)
            fold.on_progress(fold.position)
    finally:
        ahead.cancel()
    if fold.unsettled:
        # Positions commit in order (DESIGN.md, invariant 2), so this means that broke.
        raise RuntimeError(
            f"the log up to position {fold.head} changed while it was folded:"
            f" {fold.unsettled} incidents never reached their last event"
        )
    for outlet in outlets:
        await outlet.put(None)


async def fold_to_head(conn: asyncpg.Connection[Any], on_progress: Callable[[int], None]) -> Fold:
    """A fold of the log up to its current head (what comes later is caught up after)."""
    head = await head_position(conn)
    rows = await conn.fetch(LAST_VERSIONS, head)
    return Fold(head, {row[0]: row[1] for row in rows}, on_progress)
