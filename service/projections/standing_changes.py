"""Which standings an event changed: every actor's standing at the position before it and
at its own, compared, exactly as GET /v1/countries/{code}?known_at=N answers them.

Comparing every actor, not only the event's, is what makes it exact: a late report of
a place moves `places_lost` of whoever held it before, who need not be named in it.
A standing at a position never changes (the read models keep every version), so
what is computed here is kept by position and shared by every subscriber of the
process. Positions above the read models' checkpoint are never asked for: callers
derive only what the projector has applied, so a receiver can read it at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import msgspec

from service.projections.standings import At, standings
from service.projections.standings_views import Standing, standing

if TYPE_CHECKING:
    from service.log.store import Connection

KEEP_POSITIONS: Final = 4096  # changes kept, by position (a few hundred bytes each)
KEEP_STANDINGS: Final = 4  # whole tables kept: the next position's "before" is this one's "after"


class StandingChange(msgspec.Struct, frozen=True):
    """One actor's standing at the position before an event and at the event's."""

    country: str
    before: Standing
    after: Standing


def _all(rows: list[dict[str, object]], position: int) -> dict[str, Standing]:
    return {str(row["code"]): standing(row, str(row["code"]), position) for row in rows}


def _figures(value: Standing) -> Standing:
    # Two standings differ by their figures, not by the position they were read at.
    return msgspec.structs.replace(value, position=0)


def compare(
    before: dict[str, Standing], after: dict[str, Standing], position: int
) -> tuple[StandingChange, ...]:
    """The actors (by code) whose standing differs between two tables; absent is zeros."""
    changed = []
    for code in sorted(before.keys() | after.keys()):
        was = before.get(code) or standing(None, code, position - 1)
        now = after.get(code) or standing(None, code, position)
        if _figures(was) != _figures(now):
            changed.append(StandingChange(code, was, now))
    return tuple(changed)


class StandingChanges:
    """The standing changes of each position, computed once per process and kept."""

    def __init__(self, keep: int = KEEP_POSITIONS) -> None:
        self._keep = keep
        self._changes: OrderedDict[int, tuple[StandingChange, ...]] = OrderedDict()
        self._tables: OrderedDict[int, dict[str, Standing]] = OrderedDict()
        # One computation at a time: subscribers asking for the same position
        # together wait for the first one's answer instead of repeating its queries.
        self._computing = asyncio.Lock()
        self.computed = 0  # positions computed (the rest came from memory)

    def forget(self) -> None:
        """Drop what is kept (the read models were rebuilt, perhaps by newer code)."""
        self._changes.clear()
        self._tables.clear()

    async def at(self, conn: Connection, position: int) -> tuple[StandingChange, ...]:
        """The standings the event at `position` changed, by country code.

        `position` must be one the read models include."""
        kept = self._changes.get(position)
        if kept is not None:
            self._changes.move_to_end(position)
            return kept
        async with self._computing:
            kept = self._changes.get(position)
            if kept is not None:
                return kept
            before = await self._table(conn, position - 1)
            after = await self._table(conn, position)
            changes = compare(before, after, position)
            self._changes[position] = changes
            if len(self._changes) > self._keep:
                self._changes.popitem(last=False)
            self.computed += 1
            return changes

    async def _table(self, conn: Connection, position: int) -> dict[str, Standing]:
        table = self._tables.get(position)
        if table is None:
            table = _all(await standings(conn, At(max(position, 0))), position)
            self._tables[position] = table
            if len(self._tables) > KEEP_STANDINGS:
                self._tables.popitem(last=False)
        return table
