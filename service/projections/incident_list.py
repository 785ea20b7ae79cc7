"""The incidents read model: every incident's current state, for lists and filters."""

from __future__ import annotations

import struct
from collections.abc import Collection, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec

from service.incidents.content import actors
from service.incidents.domain import IncidentState, stream_name
from service.projections import copy_binary
from service.projections.copy_binary import REPEATED
from service.projections.versions import KIND_FIELDS, Transition

if TYPE_CHECKING:
    from service.log.store import Connection

# `state` is the encoded JSON as bytea (migration 0014): only ever read back
# whole and decoded here, so the server has nothing to parse.
_state_decoder = msgspec.json.Decoder(IncidentState)
_encoder = msgspec.json.Encoder()

UPSERT = """
INSERT INTO incidents (id, kind, status, occurred_on, actors, version, position, state)
SELECT u.id, u.kind, u.status, u.occurred_on, string_to_array(u.actors, ','), u.version,
       u.position, u.state
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[], $6::integer[],
              $7::bigint[], $8::bytea[])
       AS u(id, kind, status, occurred_on, actors, version, position, state)
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, status = excluded.status, occurred_on = excluded.occurred_on,
    actors = excluded.actors, version = excluded.version, position = excluded.position,
    state = excluded.state
"""


def incident_id(stream: str) -> UUID:
    """The incident a stream holds."""
    return UUID(stream.removeprefix("incident-"))


async def load_states(conn: Connection, ids: Sequence[UUID]) -> dict[str, IncidentState]:
    """The projected states of these incidents (those already known), by stream name."""
    rows = await conn.fetch("SELECT id, state FROM incidents WHERE id = ANY($1::uuid[])", ids)
    return {stream_name(row[0]): _state_decoder.decode(row[1]) for row in rows}


async def save(
    conn: Connection, transitions: Sequence[Transition], opened: Collection[str] = ()
) -> None:
    """Write each touched incident's last state and position.

    Incidents whose streams were `opened` by these transitions have no row yet:
    they are inserted by COPY, cheaper on both sides than the upsert the rest take.
    """
    last = {t.after.id: t for t in transitions}.values()
    new = [copy_row(t.after, t.event.position) for t in last if t.event.stream in opened]
    if new:
        await copy_binary.insert(conn, "incidents", COLUMNS, new)
    if known := [t for t in last if t.event.stream not in opened]:
        await conn.execute(UPSERT, *_columns(known))


def record(state: IncidentState, position: int) -> tuple[Any, ...]:
    """The incidents row of a state, in column order."""
    return (
        state.id,
        state.incident.__struct_config__.tag,
        state.status,
        state.incident.occurred_on,
        list(actors(state.incident)),
        state.version,
        position,
        _encoder.encode(state),
    )


COLUMNS: Final = ("id", "kind", "status", "occurred_on", "actors", "version", "position", "state")
# A row is mostly a few fixed-width fields: each run of them is one struct.pack.
_ROW: Final = copy_binary.fields(len(COLUMNS)) + copy_binary.UUID_LENGTH
_TAIL: Final = struct.Struct(">iiiqi").pack  # version, position, then the state's length


def copy_row(state: IncidentState, position: int) -> bytes:
    """The row `record` gives, in COPY's binary format."""
    incident = state.incident
    encoded = _encoder.encode(state)
    return b"".join(
        (
            _ROW,
            state.id.bytes,
            KIND_FIELDS[type(incident)],
            REPEATED[state.status],
            REPEATED[incident.occurred_on],
            REPEATED[actors(incident)],
            _TAIL(4, state.version, 8, position, len(encoded)),
            encoded,
        )
    )


def _columns(transitions: list[Transition]) -> list[list[Any]]:
    rows = (record(t.after, t.event.position) for t in transitions)
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[4] = [",".join(codes) for codes in columns[4]]  # unnest takes no ragged arrays
    return columns


class IncidentFilter(msgspec.Struct, frozen=True):
    """What GET /v1/incidents narrows by."""

    country: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None
    status: str | None = None


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    """Where a page ended: the last incident's date and id (newest first)."""

    occurred_on: date
    id: UUID


LIST = """
SELECT state FROM incidents
 WHERE ($1::text IS NULL OR actors @> ARRAY[$1::text])
   AND ($2::text IS NULL OR kind = $2)
   AND ($3::date IS NULL OR occurred_on >= $3)
   AND ($4::date IS NULL OR occurred_on <= $4)
   AND ($5::text IS NULL OR status = $5)
   AND ($6::date IS NULL OR (occurred_on, id) < ($6::date, $7::uuid))
 ORDER BY occurred_on DESC, id DESC
 LIMIT $8
"""


async def list_incidents(
    conn: Connection, filters: IncidentFilter, after: Cursor | None, limit: int
) -> tuple[list[IncidentState], Cursor | None]:
    """A page of incidents, newest first, and the cursor of the next page (None at the end)."""
    rows = await conn.fetch(
        LIST,
        filters.country,
        filters.kind,
        filters.since,
        filters.until,
        filters.status,
        after.occurred_on if after else None,
        after.id if after else None,
        limit + 1,
    )
    states = [_state_decoder.decode(row[0]) for row in rows[:limit]]
    more = len(rows) > limit
    last = states[-1] if more else None
    return states, Cursor(last.incident.occurred_on, last.id) if last else None
