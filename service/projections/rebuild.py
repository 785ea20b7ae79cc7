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

A large log folds in parts, each a share of the streams in a process of its
own (rebuild_part). The fold is rebuild_fold's; here are the shadow tables,
their loading and the swap.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from service.log.database import connect
from service.log.doorbell import REBUILT_CHANNEL
from service.log.store import head_position, read_folded
from service.projections import copy_binary, versions
from service.projections import incident_list as incidents
from service.projections.projector import CHECKPOINT, project
from service.projections.rebuild_fold import WHOLE, fold_into, start_fold
from service.projections.rebuild_part import fold_in_processes

if TYPE_CHECKING:
    import asyncpg

    from service.log.envelope import FoldedEvent
    from service.projections.rebuild_fold import Chunks, Deliver, Part

    Connections = tuple[asyncpg.Connection[Any], ...]

SHADOW: Final = "legation_rebuild"
READ_MODELS: Final = ("incidents", "incident_versions")
PAGE: Final = 10_000
RUNTIME_ROLE: Final = "legation_runtime"
INDEX_MEMORY: Final = "256MB"
COLUMNS: Final = (incidents.COLUMNS, versions.COLUMNS)  # of each read model, as COPY sends them
PARTS_FROM: Final = 50_000  # events in the log; below, one process folds it all
MAX_PARTS: Final = 4


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


async def _load_shadow(conns: Connections, folding: Folding) -> None:
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
            await _fold_parts(conns[0], folding, outlets)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


class Folding(NamedTuple):
    """What folding the log takes: up to where, in how many parts, and whom to tell."""

    head: int
    parts: int
    dsn: str
    on_progress: Callable[[int], None]


async def _fold_parts(
    conn: asyncpg.Connection[Any], folding: Folding, outlets: tuple[Chunks, Chunks]
) -> None:
    """Fold the log into the outlets: here if in one part, else a process for each part."""
    reached = [0] * folding.parts  # each part's position: progress is the least of them

    def deliver_for(part: Part) -> Deliver:
        async def deliver(incident_rows: bytes, version_rows: bytes, position: int) -> None:
            for outlet, rows in zip(outlets, (incident_rows, version_rows), strict=True):
                if rows:
                    await outlet.put(rows)
            reached[part.index] = position
            folding.on_progress(min(reached))

        return deliver

    if folding.parts == 1:
        fold = await start_fold(conn, folding.head, WHOLE)
        await fold_into(conn, fold, deliver_for(WHOLE))
    else:
        await fold_in_processes(folding.dsn, folding.head, folding.parts, deliver_for)
    for outlet in outlets:
        await outlet.put(None)


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


async def _project_into_shadow(conn: asyncpg.Connection[Any], after: int) -> list[FoldedEvent]:
    """One page of what was appended after `after`, projected into the shadow tables."""
    # The projector's own code, writing into the shadow tables.
    await conn.execute(f"SET LOCAL search_path = {SHADOW}, public")
    events = await read_folded(conn, after, PAGE)
    if events:
        await project(conn, events)
    return events


async def _catch_up(conn: asyncpg.Connection[Any], after: int) -> int:
    """Follow the log into the shadow tables without holding the live projector up."""
    while True:
        async with conn.transaction():
            events = await _project_into_shadow(conn, after)
        if events:
            after = events[-1].position
        if len(events) < PAGE:
            return after


async def _catch_up_and_swap(conn: asyncpg.Connection[Any], after: int) -> int:
    """Under the checkpoint lock: project the last few events, then swap the tables in."""
    await conn.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", CHECKPOINT
    )
    while events := await _project_into_shadow(conn, after):
        after = events[-1].position
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
        after,
    )
    # Delivered at commit: every process drops the answers it computed from the old tables.
    await conn.execute("SELECT pg_notify($1, $2)", REBUILT_CHANNEL, str(after))
    return after


async def _grant_runtime(conn: asyncpg.Connection[Any]) -> None:
    # Fresh tables carry no grants: give the runtime role (migration 0005) its rights back.
    if await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", RUNTIME_ROLE):
        tables = ", ".join(f"public.{table}" for table in READ_MODELS)
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {RUNTIME_ROLE}")


def default_parts(head: int) -> int:
    """A part per core for a large log; one for a log folded faster than a process starts."""
    if head < PARTS_FROM:
        return 1
    # The cores this process may run on (a container's or taskset's), not all the machine's.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_PARTS))


async def rebuild(
    dsn: str, on_progress: Callable[[int], None] = lambda position: None, parts: int | None = None
) -> int:
    """Rebuild every read model from the log; the position the rebuilt models include.

    Folding and loading happen beside a running server, which keeps answering
    from the live tables; only the short catch-up and swap hold its projector.
    The log's streams fold in `parts` parts at once (default_parts when None).
    """
    # The fold makes millions of objects, none in a cycle: the cyclic collector
    # would scan the states alive at the time, again and again, for nothing.
    gc.disable()
    conns = tuple([await connect(dsn) for _ in range(1 + len(READ_MODELS))])
    try:
        head = await head_position(conns[0])
        await _load_shadow(conns, Folding(head, parts or default_parts(head), dsn, on_progress))
        position = await _catch_up(conns[0], head)
        async with conns[0].transaction():
            position = await _catch_up_and_swap(conns[0], position)
        on_progress(position)
        return position
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
