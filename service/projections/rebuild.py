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
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from service.incidents.domain import IncidentState, evolve
from service.log.database import connect
from service.log.doorbell import REBUILT_CHANNEL
from service.log.envelope import RecordedEvent
from service.log.store import head_position, read_all
from service.projections import copy_binary, versions
from service.projections import incident_list as incidents
from service.projections.projector import CHECKPOINT, project
from service.projections.versions import Changes, Transition

if TYPE_CHECKING:
    import asyncpg

    Connections = tuple[asyncpg.Connection[Any], ...]
    Chunks = asyncio.Queue[bytes | None]  # rows in COPY's binary format; None ends them

SHADOW: Final = "legation_rebuild"
READ_MODELS: Final = ("incidents", "incident_versions")
PAGE: Final = 10_000
FOLD_PAGE: Final = 5_000
RUNTIME_ROLE: Final = "legation_runtime"
INDEX_MEMORY: Final = "256MB"
COLUMNS: Final = (incidents.COLUMNS, versions.COLUMNS)  # of each read model, as COPY sends them

# Which version of each stream is its last up to the head; a stream missing here
# has one event. Up to there, each incident's rows are final and can be written.
LAST_VERSIONS: Final = """
SELECT stream, max(version) FROM events WHERE version > 1 AND position <= $1 GROUP BY stream
"""
# The fold reads no event's metadata (who appended it, in answer to what): it is
# no part of any read model, and sending and decoding it costs a sixth of the read.
FOLD_READ: Final = """
SELECT position, id, stream, version, type, schema_version, occurred_on, recorded_at, data
  FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3
"""
NO_METADATA: Final = msgspec.Raw(b"{}")


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

    def apply(self, events: list[RecordedEvent]) -> None:
        """Fold the next events of the log."""
        states, last_versions, changes = self._states, self._last_versions, self._changes
        no_stored_rows: dict[str, tuple[int, int]] = {}
        for event in events:
            key = event.stream
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


async def _read(conn: asyncpg.Connection[Any], after: int, head: int) -> list[RecordedEvent]:
    """The next page of events up to the head, as the fold reads them."""
    rows = await conn.fetch(FOLD_READ, after, head, FOLD_PAGE)
    return [
        RecordedEvent(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], msgspec.Raw(r[8]), NO_METADATA
        )
        for r in rows
    ]


async def _fold_into(
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


async def _fold_to_head(conn: asyncpg.Connection[Any], on_progress: Callable[[int], None]) -> Fold:
    """A fold of the log up to its current head (what comes later is caught up after)."""
    head = await head_position(conn)
    rows = await conn.fetch(LAST_VERSIONS, head)
    return Fold(head, {row[0]: row[1] for row in rows}, on_progress)


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
            await _fold_into(conns[0], fold, outlets)
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
        fold = await _fold_to_head(conns[0], on_progress)
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
