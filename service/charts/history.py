"""The expulsions a chart draws, as known at a log position, with their sources and
corrections as the log held them then (not as they read now)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec

from service.incidents.catalogue import Source, corrected_decoder, source_added_decoder
from service.projections.standings import PLAIN, At, _members, _sided

if TYPE_CHECKING:
    from service.log.store import Connection

# `v` and its figures (number, least, most, ...) are the standings' own, so that a
# chart's last level is always the standing's figure.
# The rows of `v` (the versions current at $1 that occurred by $2) a chart draws:
# expulsions with $3 on one side, and $4 (when given) on the other. `v` counts a
# bloc's side as the bloc; `s`, the same version, names the parties as reported.
EXPULSIONS: Final = """
SELECT v.incident_id AS id, v.occurred_on, v.reported_position,
       v.initiator, v.recipient, v.joint_initiators, v.joint_recipients,
       s.initiator || s.joint_initiators AS named_initiators,
       s.recipient || s.joint_recipients AS named_recipients,
       v.number, v.least, v.most, v.uncounted, v.disputed, v.count, v.count_low,
       v.count_high, v.responds_to, v.summary
  FROM v JOIN incident_versions s ON s.incident_id = v.incident_id AND s.valid_from = v.valid_from
 WHERE v.kind = 'expulsion'
   AND (($3::text = ANY(v.initiator || v.joint_initiators)
         AND ($4::text IS NULL OR $4::text = ANY(v.recipient || v.joint_recipients)))
     OR ($3::text = ANY(v.recipient || v.joint_recipients)
         AND ($4::text IS NULL OR $4::text = ANY(v.initiator || v.joint_initiators))))
 ORDER BY v.occurred_on, v.reported_position, v.incident_id
"""
EXPULSIONS_PLAIN: Final = PLAIN + EXPULSIONS
EXPULSIONS_SIDED: Final = _sided(5) + EXPULSIONS

# Sources and corrections are not versioned rows: the stream's events up to N are.
TRAIL: Final = """
SELECT stream, type, data, recorded_at FROM events
 WHERE stream = ANY($1::text[]) AND position <= $2
   AND type IN ('expulsion.reported', 'incident.corrected', 'incident.source_added')
 ORDER BY position
"""


class Correction(msgspec.Struct, frozen=True):
    """A correction as the log recorded it."""

    recorded_on: date
    note: str | None


class ExpulsionAt(msgspec.Struct, frozen=True, kw_only=True):
    """One expulsion as known at a position; `number`, `least`, `most` are what it
    attributes to a single actor on each side (the standings' FIGURES)."""

    id: UUID
    occurred_on: date
    reported_position: int
    initiator: str
    recipient: str
    joint_initiators: tuple[str, ...]
    joint_recipients: tuple[str, ...]
    named_initiators: tuple[str, ...]  # the parties as the report names them
    named_recipients: tuple[str, ...]
    number: int
    least: int
    most: int | None
    uncounted: bool
    disputed: bool
    count: int | None
    count_low: int | None
    count_high: int | None
    responds_to: tuple[UUID, ...]
    summary: str | None
    sources: tuple[Source, ...] = ()
    corrections: tuple[Correction, ...] = ()

    @property
    def initiators(self) -> tuple[str, ...]:
        """Every actor on the expelling side."""
        return (self.initiator, *self.joint_initiators)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every actor whose diplomats were expelled."""
        return (self.recipient, *self.joint_recipients)


class Trail(msgspec.Struct):
    """What the events of one incident said about its sources and corrections."""

    sources: list[Source]
    corrections: list[Correction]


async def expulsions(
    conn: Connection, at: At, code: str, counterpart: str | None = None
) -> list[ExpulsionAt]:
    """The expulsions `code` (a bloc's side with `at.side`) took part in, with
    `counterpart` when given, oldest first, with their sources as known at `at`."""
    sql, side = (EXPULSIONS_PLAIN, ()) if at.side is None else (EXPULSIONS_SIDED, _members(at.side))
    rows = await conn.fetch(sql, at.position, at.as_of, code, counterpart, *side)
    trails = await _trails(conn, [row["id"] for row in rows], at.position)
    return [_expulsion(dict(row), trails.get(row["id"])) for row in rows]


def _expulsion(row: dict[str, Any], trail: Trail | None) -> ExpulsionAt:
    found = trail or Trail([], [])
    return msgspec.convert(
        {**row, "sources": found.sources, "corrections": found.corrections},
        ExpulsionAt,
        from_attributes=False,
    )


async def _trails(conn: Connection, ids: list[UUID], position: int) -> dict[UUID, Trail]:
    if not ids:
        return {}
    rows = await conn.fetch(TRAIL, [f"incident-{id}" for id in ids], position)
    trails: dict[UUID, Trail] = {}
    for row in rows:
        incident = UUID(row["stream"].removeprefix("incident-"))
        trail = trails.setdefault(incident, Trail([], []))
        _follow(trail, row["type"], row["data"], row["recorded_at"])
    return trails


_reported = msgspec.json.Decoder(dict[str, Any])


def _follow(trail: Trail, event_type: str, data: bytes, recorded_at: datetime) -> None:
    """Fold one event into the trail: a correction restates the whole incident."""
    if event_type == "incident.source_added":
        _add(trail.sources, [source_added_decoder.decode(data).source])
    elif event_type == "incident.corrected":
        corrected = corrected_decoder.decode(data)
        trail.sources = []
        _add(trail.sources, corrected.incident.sources)
        trail.corrections.append(Correction(recorded_at.date(), corrected.note))
    else:
        reported = _reported.decode(data)
        _add(trail.sources, msgspec.convert(reported["sources"], tuple[Source, ...]))


def _add(sources: list[Source], more: Iterable[Source]) -> None:
    sources.extend(source for source in more if source not in sources)
