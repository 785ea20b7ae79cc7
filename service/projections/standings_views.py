"""What the standings routes answer: an actor's standing, ledgers, timelines and territories."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, TypeVar
from uuid import UUID

import msgspec

from service.incidents.actors import actor_name
from service.incidents.catalogue import Place

T = TypeVar("T")
_place_decoder = msgspec.json.Decoder(Place)


class Expulsions(msgspec.Struct, frozen=True):
    """Diplomats an actor expelled and had expelled."""

    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    balance: int
    incidents_initiated: int
    incidents_targeted: int


class LatestSanction(msgspec.Struct, frozen=True):
    """The latest sanctions round an actor received."""

    incident: UUID
    imposing: str
    round: int | None
    occurred_on: date


class Sanctions(msgspec.Struct, frozen=True):
    """Sanctions rounds an actor imposed and received."""

    rounds_imposed: int
    rounds_received: int
    latest_received: LatestSanction | None


class Territory(msgspec.Struct, frozen=True):
    """Places an actor holds, gained and lost."""

    places_controlled: int
    places_gained: int
    places_lost: int


class Standing(msgspec.Struct, frozen=True):
    """An actor's standing as of a log position (and date)."""

    code: str
    name: str
    expulsions: Expulsions
    sanctions: Sanctions
    territory: Territory
    last_incident_on: date | None
    position: int


class CountryList(msgspec.Struct, frozen=True):
    """Every actor of an active incident, with its standing."""

    items: list[Standing]
    position: int
    next_cursor: str | None = None


class Relation(msgspec.Struct, frozen=True):
    """The tit-for-tat ledger between an actor and one counterpart."""

    counterpart: str
    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    sanctions_rounds_imposed: int
    sanctions_rounds_received: int
    incidents: int
    last_incident_on: date | None


class Relations(msgspec.Struct, frozen=True):
    """An actor's ledger with every counterpart."""

    code: str
    items: list[Relation]
    position: int
    next_cursor: str | None = None


class LedgerIncident(msgspec.Struct, frozen=True):
    """One incident between two actors (initiator acted on recipient)."""

    id: UUID
    kind: str
    occurred_on: date
    initiator: str
    recipient: str | None
    count: int | None
    round: int | None
    place: Place | None
    responds_to: list[UUID]
    summary: str | None


class Bilateral(msgspec.Struct, frozen=True):
    """The ledger between `code` and `counterpart`, with their incidents oldest first."""

    code: str
    counterpart: str
    relation: Relation
    incidents: list[LedgerIncident]
    position: int
    next_cursor: str | None = None  # of `incidents`


class TimelineItem(msgspec.Struct, frozen=True):
    """An incident an actor takes part in, with its role there."""

    id: UUID
    kind: str
    occurred_on: date
    role: str
    initiator: str
    recipient: str | None
    count: int | None
    round: int | None
    place: Place | None
    responds_to: list[UUID]
    summary: str | None


class Timeline(msgspec.Struct, frozen=True):
    """An actor's incidents, newest first."""

    code: str
    items: list[TimelineItem]
    position: int
    next_cursor: str | None = None


class TerritoryItem(msgspec.Struct, frozen=True):
    """A place, who holds it since when, and the reports about it."""

    place: Place
    controller: str
    since: date | None
    reports: int
    last_reported_on: date
    incidents: list[UUID]


class Territories(msgspec.Struct, frozen=True):
    """Places and their controllers."""

    items: list[TerritoryItem]
    position: int
    next_cursor: str | None = None


SortField = Literal[
    "expelled_foreign_diplomats",
    "own_diplomats_expelled",
    "balance",
    "incidents_initiated",
    "incidents_targeted",
    "rounds_imposed",
    "rounds_received",
    "places_controlled",
    "places_gained",
    "places_lost",
]


def standing(row: dict[str, Any] | None, code: str, position: int) -> Standing:
    """The standing a row of `standings` gives (zeros without one)."""
    row = row or {}
    sent, received = row.get("expelled_foreign_diplomats", 0), row.get("own_diplomats_expelled", 0)
    latest = row.get("latest_received")
    return Standing(
        code=code,
        name=actor_name(code),
        expulsions=Expulsions(
            sent,
            received,
            sent - received,
            row.get("incidents_initiated", 0),
            row.get("incidents_targeted", 0),
        ),
        sanctions=Sanctions(
            row.get("rounds_imposed", 0),
            row.get("rounds_received", 0),
            msgspec.json.decode(latest, type=LatestSanction) if latest else None,
        ),
        territory=Territory(
            row.get("places_controlled", 0), row.get("places_gained", 0), row.get("places_lost", 0)
        ),
        last_incident_on=row.get("last_incident_on"),
        position=position,
    )


def relation(row: dict[str, Any]) -> Relation:
    """The ledger a row of `relations` gives."""
    return msgspec.convert(row, Relation)


def zero_relation(counterpart: str) -> Relation:
    """The ledger with a counterpart that shares no incident."""
    return Relation(counterpart, 0, 0, 0, 0, 0, None)


def incident_row(row: dict[str, Any], item: type[T]) -> T:
    """An incident row (with its place as JSON) as `item`."""
    place = row.get("place")
    return msgspec.convert(
        {**row, "place": _place_decoder.decode(place) if place else None},
        item,
        from_attributes=False,
    )
