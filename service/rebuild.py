"""`legation rebuild`: every read model folded again from position 0, then swapped in.

The whole log is folded in memory with the projector's own code (evolve and the
version changes) and written into fresh tables in a schema of their own. Then,
in one transaction holding the projector's checkpoint row, what was appended
meanwhile is projected into them and they are swapped in by renaming: a running
projector waits, then carries on from the rebuilt checkpoint.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from service.database import connect
from service.incidents import IncidentState, evolve
from service.projections import incidents, versions
from service.projections.versions import Changes, Transition
from service.projector import CHECKPOINT, project
from service.store import head_position, read_all

if TYPE_CHECKING:
    import asyncpg

SHADOW: Final = "legation_rebuild"
READ_MODELS: Final = ("incidents", "incident_versions")
PAGE: Final = 10_000
RUNTIME_ROLE: Final = "legation_runtime"


class Fold:
    """Every incident and version row, folded in memory from the log."""

    def __init__(self) -> None:
        self.states: dict[str, IncidentState] = {}  # by stream name: no UUID parsing
        self.positions: dict[str, int] = {}
        self.changes = Changes()
        self.position = 0

    def apply(self, events: list[Any]) -> None:
        """Fold the next events of the log."""
        no_stored_rows: dict[UUID, tuple[int, int]] = {}
        for event in events:
            key = event.stream
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


INDEXES = """
SELECT i.indexname, i.indexdef, c.conname IS NOT NULL AS primary_key
  FROM pg_indexes i
  LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype = 'p'
 WHERE i.schemaname = 'public' AND i.tablename = $1
"""


async def _create_shadow(conn: asyncpg.Connection[Any], table: str) -> list[str]:
    """An index-less copy of a live table; the statements that index it like the live one."""
    await conn.execute(
        f"CREATE TABLE {SHADOW}.{table}"
        f" (LIKE public.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    statements = []
    for name, definition, primary_key in await conn.fetch(INDEXES, table):
        statements.append(definition.replace(" ON public.", f" ON {SHADOW}."))
        if primary_key:
            statements.append(
                f"ALTER TABLE {SHADOW}.{table} ADD CONSTRAINT {name} PRIMARY KEY USING INDEX {name}"
            )
    return statements


async def _load_shadow(
    conns: tuple[asyncpg.Connection[Any], asyncpg.Connection[Any]], fold: Fold
) -> None:
    """Fresh tables in the shadow schema, filled and indexed (two tables, two connections)."""
    await conns[0].execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE; CREATE SCHEMA {SHADOW}")
    indexing = [await _create_shadow(conns[0], table) for table in READ_MODELS]
    incident_rows = [incidents.record(state, fold.positions[k]) for k, state in fold.states.items()]
    version_rows = [versions.record(row) for row in fold.changes.new_rows]
    # Rows first, indexes after: building an index once beats updating it per row.
    await asyncio.gather(
        _fill(conns[0], "incidents", incident_rows, indexing[0]),
        _fill(conns[1], "incident_versions", version_rows, indexing[1]),
    )


async def _fill(
    conn: asyncpg.Connection[Any], table: str, rows: list[tuple[Any, ...]], indexing: list[str]
) -> None:
    await conn.copy_records_to_table(table, schema_name=SHADOW, records=rows)
    for statement in indexing:
        await conn.execute(statement)


async def _project_into_shadow(conn: asyncpg.Connection[Any], fold: Fold) -> int:
    """One page of what was appended since the fold, into the shadow tables (in a transaction)."""
    # The projector's own code, writing into the shadow tables.
    await conn.execute(f"SET LOCAL search_path = {SHADOW}, public")
    events = await read_all(conn, fold.position, PAGE)
    if events:
        await project(conn, events)
        fold.position = events[-1].position
    return len(events)


async def _catch_up(conn: asyncpg.Connection[Any], fold: Fold) -> None:
    """Follow the log into the shadow tables without holding the live projector up."""
    while True:
        async with conn.transaction():
            if await _project_into_shadow(conn, fold) < PAGE:
                return


async def _catch_up_and_swap(conn: asyncpg.Connection[Any], fold: Fold) -> None:
    """Under the checkpoint lock: project the last few events, then swap the tables in."""
    await conn.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", CHECKPOINT
    )
    while await _project_into_shadow(conn, fold):
        pass
    for table in READ_MODELS:
        # Index names are per schema: the rebuilt ones keep the live names.
        await conn.execute(f"DROP TABLE public.{table}")
        await conn.execute(f"ALTER TABLE {SHADOW}.{table} SET SCHEMA public")
    await conn.execute(f"DROP SCHEMA {SHADOW}")
    await _grant_runtime(conn)
    await conn.execute(
        "UPDATE public.projection_checkpoints SET position = $2, updated_at = now()"
        " WHERE name = $1",
        CHECKPOINT,
        fold.position,
    )


async def _grant_runtime(conn: asyncpg.Connection[Any]) -> None:
    # Fresh tables carry no grants: give the runtime role (migration 0005) its rights back.
    if await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", RUNTIME_ROLE):
        tables = ", ".join(f"public.{table}" for table in READ_MODELS)
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {RUNTIME_ROLE}")


async def rebuild(dsn: str, on_progress: Callable[[int], None] = lambda position: None) -> int:
    """Rebuild every read model from the log; the position the rebuilt models include.

    Folding and loading happen beside a running server, which keeps answering
    from the live tables; only the short catch-up and swap hold its projector.
    """
    # The fold builds millions of objects that all stay alive: the cyclic
    # collector would re-scan the growing heap again and again for nothing.
    gc.disable()
    conns = (await connect(dsn), await connect(dsn))
    try:
        fold = Fold()
        await _fold_until_caught_up(conns[0], fold, on_progress)
        await _load_shadow(conns, fold)
        await _catch_up(conns[0], fold)
        async with conns[0].transaction():
            await _catch_up_and_swap(conns[0], fold)
        on_progress(fold.position)
        return fold.position
    finally:
        gc.enable()
        for conn in conns:
            await conn.close()


async def log_head(dsn: str) -> int:
    """The current head of the log (the progress bar's total)."""
    conn = await connect(dsn)
    try:
        return await head_position(conn)
    finally:
        await conn.close()
