"""Incident versions: the bitemporal read model behind every standing.

Each row is one content an incident had, with the log positions between which
it was current; a retraction closes the current row and opens none. Standings
as known at position N are then a plain aggregate over the rows current at N.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final
from uuid import UUID

import msgspec

from service.incidents.actors import place_key
from service.incidents.catalogue import (
    INCIDENT_TYPES,
    Expulsion,
    Incident,
    SanctionsRound,
    TerritorialControl,
)
from service.incidents.content import actors
from service.incidents.domain import IncidentState, stream_name
from service.log.envelope import Folded
from service.projections import copy_binary
from service.projections.copy_binary import NULL, REPEATED

if TYPE_CHECKING:
    from service.log.store import Connection

STANDING_EVENTS: Final = frozenset(
    {
        "expulsion.reported",
        "sanctions_round.reported",
        "territorial_control.reported",
        "incident.corrected",
        "incident.retracted",
    }
)
_encoder = msgspec.json.Encoder()


class Version(msgspec.Struct):
    """One row of incident_versions, as the projector builds it."""

    incident_id: UUID
    valid_from: int
    valid_to: int | None
    reported_position: int
    incident: Incident


class Transition(msgspec.Struct, frozen=True):
    """One event and the incident before and after it."""

    event: Folded
    before: IncidentState | None
    after: IncidentState


CURRENT = """
SELECT incident_id, valid_from, reported_position FROM incident_versions
 WHERE incident_id = ANY($1::uuid[]) AND valid_to IS NULL
"""
CLOSE = """
UPDATE incident_versions v SET valid_to = u.valid_to
  FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS u(incident_id, valid_from, valid_to)
 WHERE v.incident_id = u.incident_id AND v.valid_from = u.valid_from
"""


async def apply(conn: Connection, transitions: Sequence[Transition]) -> None:
    """Close and open the version rows the transitions call for."""
    relevant = [t for t in transitions if t.event.type in STANDING_EVENTS]
    if not relevant:
        return
    # A stream that starts in these transitions has no stored row yet (rows and
    # the checkpoint commit together): reports, the most of a log, look up nothing.
    opened = {t.event.stream for t in transitions if t.event.version == 1}
    touched = list({t.after.id for t in relevant if t.event.stream not in opened})
    rows = await conn.fetch(CURRENT, touched) if touched else []
    current = {stream_name(row[0]): (row[1], row[2]) for row in rows}
    changes = Changes()
    for transition in relevant:
        changes.step(transition, current)
    closes, new_rows = changes.closes, changes.new_rows
    if closes:
        await conn.execute(CLOSE, *map(list, zip(*closes, strict=True)))
    if new_rows:
        rows = [copy_row(row) for row in new_rows]
        await copy_binary.insert(conn, "incident_versions", COLUMNS, rows)


class Changes:
    """The version rows a run of transitions closes and opens."""

    def __init__(self) -> None:
        # Keyed by stream name, whose hash Python keeps (a UUID's is recomputed each time).
        self.opened: dict[str, Version] = {}  # opened here and still current
        self.closes: list[tuple[UUID, int, int]] = []  # (incident, valid_from, valid_to)
        self.new_rows: list[Version] = []

    def step(self, transition: Transition, current: dict[str, tuple[int, int]]) -> Version | None:
        """Close the incident's current row (stored or opened here); open one if active.

        `current` maps streams to their incident's stored current row
        (valid_from, reported_position); rows closed here are taken out of it.
        Returns the row opened here that this closed, if any: no later step
        changes it.
        """
        event, after = transition.event, transition.after
        if event.type not in STANDING_EVENTS:
            return None
        key, reported_at, closed = event.stream, event.position, None
        if key in self.opened:
            closed = self.opened.pop(key)
            closed.valid_to, reported_at = event.position, closed.reported_position
        elif key in current:
            valid_from, reported_at = current.pop(key)
            self.closes.append((after.id, valid_from, event.position))
        if after.status == "active":
            version = Version(after.id, event.position, None, reported_at, after.incident)
            self.opened[key] = version
            self.new_rows.append(version)
        return closed


_NO_RANGE: Final = NULL + NULL
_NO_JOINT: Final = REPEATED[()] * 2
_NEITHER: Final = _NO_RANGE + _NO_JOINT  # no range, no joint parties: most rows


def _roles(incident: Incident) -> tuple[str, str | None, int | None, int | None, bytes]:
    """initiator, recipient, count, round, and the last four columns (range, joint lists)."""
    if isinstance(incident, Expulsion):
        if incident.count_range is None and not (
            incident.joint_expelling or incident.joint_expelled
        ):
            return incident.expelling, incident.expelled, incident.count, None, _NEITHER
        return incident.expelling, incident.expelled, incident.count, None, _stated(incident)
    if isinstance(incident, SanctionsRound):
        return incident.imposing, incident.target, None, incident.round, _NEITHER
    return incident.controller, incident.previous_controller, None, None, _NEITHER


def _stated(incident: Expulsion) -> bytes:
    """count_low, count_high, joint_initiators, joint_recipients."""
    if incident.count_range is None:
        stated = _NO_RANGE
    else:
        low, high = incident.count_range
        stated = copy_binary.int4(low) + (NULL if high is None else copy_binary.int4(high))
    return stated + REPEATED[incident.joint_expelling] + REPEATED[incident.joint_expelled]


def _place(incident: Incident) -> tuple[str | None, bytes | None]:
    if not isinstance(incident, TerritorialControl):
        return None, None
    place = incident.place
    return place_key(place.country, place.name, place.geonames_id), _encoder.encode(place)


COLUMNS: Final = (
    "incident_id", "valid_from", "valid_to", "reported_position", "kind", "occurred_on",
    "initiator", "recipient", "count", "round", "place_key", "place", "actors", "responds_to",
    "summary", "count_low", "count_high", "joint_initiators", "joint_recipients",
)  # fmt: skip
# A row is mostly a few fixed-width fields: each run of them is one struct.pack.
_ROW: Final = copy_binary.fields(len(COLUMNS)) + copy_binary.UUID_LENGTH
_OPEN: Final = struct.Struct(">iqiiq").pack  # valid_from, NULL valid_to, reported_position
_CLOSED: Final = struct.Struct(">iqiqiq").pack  # valid_from, valid_to, reported_position
KIND_FIELDS: Final = {
    kind: copy_binary.text(str(kind.__struct_config__.tag)) for kind in INCIDENT_TYPES
}
_NO_REFERENCES: Final = copy_binary.uuids(())


def copy_row(row: Version) -> bytes:
    """The row `record` gives, in COPY's binary format."""
    incident = row.incident
    initiator, recipient, count, round_, stated = _roles(incident)
    key, place = _place(incident)
    if row.valid_to is None:
        validity = _OPEN(8, row.valid_from, -1, 8, row.reported_position)
    else:
        validity = _CLOSED(8, row.valid_from, 8, row.valid_to, 8, row.reported_position)
    return b"".join(
        (
            _ROW,
            row.incident_id.bytes,
            validity,
            KIND_FIELDS[type(incident)],
            REPEATED[incident.occurred_on],
            REPEATED[initiator],
            NULL if recipient is None else REPEATED[recipient],
            NULL if count is None else copy_binary.int4(count),
            NULL if round_ is None else copy_binary.int4(round_),
            NULL if key is None else copy_binary.text(key),
            NULL if place is None else copy_binary.jsonb(place),
            REPEATED[actors(incident)],
            copy_binary.uuids(incident.responds_to) if incident.responds_to else _NO_REFERENCES,
            NULL if incident.summary is None else copy_binary.text(incident.summary),
            stated,
        )
    )
