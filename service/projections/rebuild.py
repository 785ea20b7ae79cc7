"""`legation rebuild`: every read model folded again from position 0, then swapped in.

The log up to its current head is folded with the projector's own code (evolve
and the version changes). An incident's rows are final once its last event up
to the head is folded, so they go out at once, by COPY into fresh tables in a
schema of their own: the server stores rows while the fold makes the next ones,
and memory holds only incidents with events still to come. The tables are
indexed once full. Then what was appended meanwhile is projected into them and,
in one transaction holding the projector's checkpoint row, they are swapped in
by renaming: a running projector waits, then carries on from the rebuilt
checkpoint. The swap is announced on REBUILT_CHANNEL, so that running servers
drop the answers they keep (service/projections/rebuild_watch.py).

The fold is rebuild_fold's; here are the shadow tables, their loading and the swap.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

from service.log.database import connect
from service.log.doorbell import REBUILT_CHANNEL
from service.log.store import head_position, read_folded
from service.projections import copy_binary, versions
from service.projections import incident_list as incidents
from service.projections.projector import CHECKPOINT, project
from service.projections.rebuild_fold import Fold, fold_into, fold_to_head

if TYPE_CHECKING:
    import asyncpg

    from service.projections.rebuild_fold import Chunks

    Connections = tuple[asyncpg.Connection[Any], ...]

SHADOW: Final = "legation_rebuild"
READ_MODELS: Final = ("incidents", "incident_versions")
PAGE: Final = 10_000
RUNTIME_ROLE: Final = "legation_runtime"
INDEX_MEMORY: Final = "256MB"
COLUMNS: Final = (incidents.COLUMNS, versions.COLUMNS)  # of each read model, as COPY sends them


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


async def _load_shadow(conns: Connections, fold: Fold) -> None:
    """Fresh tables in the shadow schema, filled as the log is folded, then indexed.

    The first connection reads the log, the others each COPY one table: the
    server parses and stores rows while the fold makes the next ones.
    """
    await conns[0].execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE; CREATE SCHEMA {SHADOW}")
    outlets: tuple[Chunks, Chunks] = (asyncio.Queue(maxsize=2), asyncio.Queue(maxsize=2))
    try:
        # A failing COPY cancels the fold (which would wait on its outlet forever) and back.
        async with asyncio.TaskGroup() as tasks:
            for conn, table, columns, outlet in zip(
                conns[1:], READ_MODELS, COLUMNS, outlets, strict=True
            ):
                tasks.create_task(_fill(conn, table, columns, outlet))
            await fold_into(conns[0], fold, outlets)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _fill(
    conn: asyncpg.Connection[Any], table: str, columns: tuple[str, ...], outlet: Chunks
) -> None:
    """Create a shadow table, COPY the fold's rows into it, then index it."""

    async def source() -> AsyncIterator[bytes]:
        yield copy_binary.SIGNATURE
        while (rows := await outlet.get()) is not None:
            yield rows
        yield copy_binary.TRAILER

    async with conn.transaction():
        indexing = await _create_shadow(conn, table)
        # FREEZE (allowed: the table is new in this transaction) stores the rows as
        # visible to every transaction at once, harmless as nothing reads these
        # tables before the swap. It is cheaper, and the index builds set no hint bits.
        await conn.copy_to_table(
            table,
            schema_name=SHADOW,
            columns=columns,
            source=source(),
            format="binary",
            freeze=True,
        )
    # Rows first, indexes after: building an index once beats updating it per row.
    # A million rows outgrow the default 64MB of sort memory and would spill to disk.
    await conn.execute(f"SET maintenance_work_mem = '{INDEX_MEMORY}'")
    for statement in indexing:
        await conn.execute(statement)


async def _project_into_shadow(conn: asyncpg.Connection[Any], fold: Fold) -> int:
    """One page of what was appended since the fold, into the shadow tables (in a transaction)."""
    # The projector's own code, writing into the shadow tables.
    await conn.execute(f"SET LOCAL search_path = {SHADOW}, public")
    events = await read_folded(conn, fold.position, PAGE)
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
    # Delivered at commit: every process drops the answers it computed from the old tables.
    await conn.execute("SELECT pg_notify($1, $2)", REBUILT_CHANNEL, str(fold.position))


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
    # The fold makes millions of objects, none in a cycle: the cyclic collector
    # would scan the states alive at the time, again and again, for nothing.
    gc.disable()
    conns = tuple([await connect(dsn) for _ in range(1 + len(READ_MODELS))])
    try:
        fold = await fold_to_head(conns[0], on_progress)
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
