"""What the standings routes answer: an actor's standing, ledgers, timelines and territories."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal, TypeVar
from uuid import UUID

import msgspec
from msgspec import Meta

from service.incidents.actors import actor_name
from service.incidents.catalogue import Place

T = TypeVar("T")
_place_decoder = msgspec.json.Decoder(Place)


Range = Annotated[
    tuple[int, int | None],
    Meta(description="[low, high] the sources allow; high null: no upper bound"),
]
BalanceRange = Annotated[
    tuple[int | None, int | None],
    Meta(description="[low, high] of the balance; null: unbounded that way"),
]
CountRange = Annotated[
    tuple[int, int | None],
    Meta(description="The incident's range as reported; high null: at least low"),
]


class Expulsions(msgspec.Struct, frozen=True, kw_only=True):
    """Diplomats an actor expelled and had expelled: the v1 numbers count what is
    attributable to the actor alone; each range spans what the sources allow."""

    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    balance: int
    incidents_initiated: int
    incidents_targeted: int
    expelled_foreign_diplomats_range: Range
    own_diplomats_expelled_range: Range
    balance_range: BalanceRange
    uncounted_initiated: int
    uncounted_targeted: int
    disputed_incidents: int
    joint_incidents: int


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


class Relation(msgspec.Struct, frozen=True, kw_only=True):
    """The tit-for-tat ledger between an actor and one counterpart; a joint expulsion
    attributes nothing to either pair but may be all theirs (see the ranges)."""

    counterpart: str
    expelled_foreign_diplomats: int
    own_diplomats_expelled: int
    sanctions_rounds_imposed: int
    sanctions_rounds_received: int
    incidents: int
    last_incident_on: date | None
    balance: int
    expelled_foreign_diplomats_range: Range
    own_diplomats_expelled_range: Range
    balance_range: BalanceRange
    uncounted_initiated: int
    uncounted_targeted: int
    disputed_incidents: int
    joint_incidents: int
    places_taken: int
    places_lost: int


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
    count_range: CountRange | None
    disputed: bool
    joint_expelling: list[str]
    joint_expelled: list[str]
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
    count_range: CountRange | None
    disputed: bool
    joint_expelling: list[str]
    joint_expelled: list[str]
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


def figure_range(row: dict[str, Any], name: str) -> tuple[int, int | None]:
    """[low, high] of a figure a standings row gives as `<name>_low` and `<name>_high`."""
    return row[f"{name}_low"], row[f"{name}_high"]


def balance_range(
    sent: tuple[int, int | None], received: tuple[int, int | None]
) -> tuple[int | None, int | None]:
    """[low(sent) - high(received), high(sent) - low(received)]; null where unbounded."""
    low = None if received[1] is None else sent[0] - received[1]
    high = None if sent[1] is None else sent[1] - received[0]
    return low, high


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    sent = figure_range(row, "expelled_foreign_diplomats")
    received = figure_range(row, "own_diplomats_expelled")
    return {
        "balance": row["expelled_foreign_diplomats"] - row["own_diplomats_expelled"],
        "expelled_foreign_diplomats_range": sent,
        "own_diplomats_expelled_range": received,
        "balance_range": balance_range(sent, received),
        **{name: row[name] for name in COUNTERS},
    }


COUNTERS = ("uncounted_initiated", "uncounted_targeted", "disputed_incidents", "joint_incidents")
EXPULSIONS = ("expelled_foreign_diplomats", "own_diplomats_expelled", "incidents_initiated",
              "incidents_targeted")  # fmt: skip
NO_INCIDENTS: Final = Expulsions(
    expelled_foreign_diplomats=0,
    own_diplomats_expelled=0,
    balance=0,
    incidents_initiated=0,
    incidents_targeted=0,
    expelled_foreign_diplomats_range=(0, 0),
    own_diplomats_expelled_range=(0, 0),
    balance_range=(0, 0),
    uncounted_initiated=0,
    uncounted_targeted=0,
    disputed_incidents=0,
    joint_incidents=0,
)


def standing(row: dict[str, Any] | None, code: str, position: int) -> Standing:
    """The standing a row of `standings` gives (zeros without one)."""
    row = row or {}
    latest = row.get("latest_received")
    expulsions = (
        Expulsions(**{name: row[name] for name in EXPULSIONS}, **_figures(row))
        if row
        else NO_INCIDENTS
    )
    return Standing(
        code=code,
        name=actor_name(code),
        expulsions=expulsions,
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


RELATION_COUNTS = ("expelled_foreign_diplomats", "own_diplomats_expelled",
                   "sanctions_rounds_imposed", "sanctions_rounds_received", "incidents",
                   "places_taken", "places_lost")  # fmt: skip


def relation(row: dict[str, Any]) -> Relation:
    """The ledger a row of `relations` gives."""
    return Relation(
        counterpart=row["counterpart"],
        last_incident_on=row["last_incident_on"],
        **{name: row[name] for name in RELATION_COUNTS},
        **_figures(row),
    )


def zero_relation(counterpart: str) -> Relation:
    """The ledger with a counterpart that shares no incident."""
    zeros = dict.fromkeys((*RELATION_COUNTS, *COUNTERS), 0)
    empty = {f"{name}_{end}": 0 for name in EXPULSIONS[:2] for end in ("low", "high")}
    return relation({"counterpart": counterpart, "last_incident_on": None, **zeros, **empty})


def incident_row(row: dict[str, Any], item: type[T]) -> T:
    """An incident row (with its place as JSON, its counts as stored) as `item`."""
    place = row.get("place")
    fields = {**row, "place": _place_decoder.decode(place) if place else None}
    if "count_low" in row:
        low, high = row["count_low"], row["count_high"]
        fields["count_range"] = None if low is None else (low, high)
        fields["disputed"] = low is not None and low != high
        fields["joint_expelling"] = row["joint_initiators"]
        fields["joint_expelled"] = row["joint_recipients"]
    return msgspec.convert(fields, item, from_attributes=False)
