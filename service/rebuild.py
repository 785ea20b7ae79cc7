"""`legation rebuild`: every read model folded again from position 0, then swapped in.

The whole log is folded in memory with the projector's own code (evolve and the
version changes), written into fresh tables in a schema of their own, and
swapped in by renaming in one transaction that holds the projector's checkpoint
row: a running projector waits, then carries on from the rebuilt checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from service.database import connect
from service.incidents import IncidentState, evolve
from service.projections import incidents, versions
from service.projections.versions import Changes, Transition
from service.projector import CHECKPOINT
from service.store import head_position, read_all

if TYPE_CHECKING:
    import asyncpg

SHADOW: Final = "legation_rebuild"
READ_MODELS: Final = ("incidents", "incident_versions")
PAGE: Final = 10_000


class Fold:
    """Every incident and version row, folded in memory from the log."""

    def __init__(self) -> None:
        self.states: dict[UUID, IncidentState] = {}
        self.positions: dict[UUID, int] = {}
        self.changes = Changes()
        self.position = 0

    def apply(self, events: list[Any]) -> None:
        """Fold the next events of the log."""
        no_stored_rows: dict[UUID, tuple[int, int]] = {}
        for event in events:
            key = incidents.incident_id(event)
            before = self.states.get(key)
            self.states[key] = after = evolve(before, event)
            self.positions[key] = event.position
            self.changes.step(Transition(event, before, after), no_stored_rows)
        self.position = events[-1].position


async def _fold_until_caught_up(
    conn: asyncpg.Connection[Any], fold: Fold, on_progress: Callable[[int], None]
) -> None:
    while events := await read_all(conn, fold.position, PAGE):
        fold.apply(events)
        on_progress(fold.position)


async def _index_names(conn: asyncpg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
        schema,
        table,
    )
    # The definition without its name and schema identifies the index.
    return {row[1].replace(f" {row[0]} ", " ").replace(f"{schema}.", ""): row[0] for row in rows}


async def _swap(conn: asyncpg.Connection[Any], fold: Fold) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE; CREATE SCHEMA {SHADOW}")
    for table in READ_MODELS:
        await conn.execute(f"CREATE TABLE {SHADOW}.{table} (LIKE public.{table} INCLUDING ALL)")
    await conn.copy_records_to_table(
        "incidents",
        schema_name=SHADOW,
        records=[
            incidents.record(state, fold.positions[key]) for key, state in fold.states.items()
        ],
    )
    await conn.copy_records_to_table(
        "incident_versions",
        schema_name=SHADOW,
        records=[versions.record(row) for row in fold.changes.new_rows],
    )
    for table in READ_MODELS:
        live = await _index_names(conn, "public", table)
        built = await _index_names(conn, SHADOW, table)
        await conn.execute(f"DROP TABLE public.{table}")
        await conn.execute(f"ALTER TABLE {SHADOW}.{table} SET SCHEMA public")
        for definition, name in built.items():
            original = live.get(definition)
            if original and original != name:
                await conn.execute(f"ALTER INDEX public.{name} RENAME TO {original}")
    await conn.execute(f"DROP SCHEMA {SHADOW}")
    await conn.execute(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
        CHECKPOINT,
        fold.position,
    )


async def rebuild(dsn: str, on_progress: Callable[[int], None] = lambda position: None) -> int:
    """Rebuild every read model from the log; the position the rebuilt models include."""
    conn = await connect(dsn)
    try:
        fold = Fold()
        await _fold_until_caught_up(conn, fold, on_progress)
        async with conn.transaction():
            # Holding the checkpoint row stops a running projector until the swap
            # commits; what was appended meanwhile is folded in first.
            await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
                CHECKPOINT,
            )
            await _fold_until_caught_up(conn, fold, on_progress)
            await _swap(conn, fold)
        return fold.position
    finally:
        await conn.close()


async def log_head(dsn: str) -> int:
    """The current head of the log (the progress bar's total)."""
    conn = await connect(dsn)
    try:
        return await head_position(conn)
    finally:
        await conn.close()
