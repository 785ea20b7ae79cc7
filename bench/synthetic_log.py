"""A realistic event log for read benches: rows for COPY into the real `events` table.

Mostly expulsion reports between ~20 actors, about 10 % corrections of earlier
incidents (version 2) and a few % sanctions rounds and territorial control
reports, encoded exactly as the service stores them so its strict decoders
accept every row.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from uuid import uuid4

import msgspec

from service.incidents.catalogue import EVENT_TYPES, corrected_decoder, incident_decoder

COLUMNS: Final = (
    "position",
    "id",
    "stream",
    "version",
    "type",
    "schema_version",
    "occurred_on",
    "recorded_at",
    "countries",
    "data",
    "metadata",
)
ACTORS: Final = (
    "RU", "UA", "NL", "DE", "FR", "GB", "US", "PL", "CZ", "EE",
    "LV", "LT", "FI", "SE", "NO", "IT", "ES", "BE", "AT", "SK",
)  # fmt: skip
OUTLETS: Final = ("AFP", "Reuters", "AP", "dpa", "TASS")
MEASURES: Final = ("trade", "financial", "travel", "energy", "technology")
PLACES: Final = (
    {"name": "Kherson", "country": "UA", "region": "UA-65", "geonames_id": 706448},
    {"name": "Bakhmut", "country": "UA", "region": "UA-14", "geonames_id": 712451},
    {"name": "Kupiansk", "country": "UA", "region": "UA-63", "geonames_id": 704147},
)
CORRECTED_SHARE: Final = 0.10
SANCTIONS_SHARE: Final = 0.015
TERRITORY_SHARE: Final = 0.015
# Corrections pick among this many recent uncorrected incidents: memory stays
# bounded at a million events and corrections still reach well back in the log.
CORRECTABLE_POOL: Final = 50_000
FIRST_DAY: Final = date(2014, 1, 1)
RECORDED_FROM: Final = datetime(2022, 1, 1, tzinfo=UTC)

_encode = msgspec.json.encode
Row = tuple[Any, ...]


def _sources(rng: random.Random) -> list[dict[str, Any]]:
    outlet = OUTLETS[rng.randrange(len(OUTLETS))]
    return [{"outlet": outlet, "url": None, "quoted": None, "published_at": None}]


def _pair(rng: random.Random) -> tuple[str, str]:
    first, second = rng.sample(ACTORS, 2)
    return first, second


def expulsion(occurred_on: date, pair: tuple[str, str], count: int, outlet: str) -> dict[str, Any]:
    """An expulsion as `Expulsion` encodes it, every optional field present."""
    return {
        "kind": "expulsion",
        "occurred_on": occurred_on,
        "expelling": pair[0],
        "expelled": pair[1],
        "count": count,
        "count_range": None,
        "joint_expelling": [],
        "joint_expelled": [],
        "deadline": None,
        "grounds": None,
        "responds_to": [],
        "summary": None,
        "sources": [{"outlet": outlet, "url": None, "quoted": None, "published_at": None}],
    }


def sanctions_round(occurred_on: date, rng: random.Random) -> dict[str, Any]:
    """A sanctions round as `SanctionsRound` encodes it."""
    imposing, target = _pair(rng)
    return {
        "kind": "sanctions_round",
        "occurred_on": occurred_on,
        "imposing": imposing,
        "target": target,
        "round": rng.randint(1, 20),
        "label": None,
        "measures": rng.sample(MEASURES, 2),
        "legal_acts": [],
        "responds_to": [],
        "summary": None,
        "sources": _sources(rng),
    }


def territorial_control(occurred_on: date, rng: random.Random) -> dict[str, Any]:
    """A territorial control report as `TerritorialControl` encodes it."""
    controller, previous = ("RU", "UA") if rng.random() < 0.5 else ("UA", "RU")
    return {
        "kind": "territorial_control",
        "occurred_on": occurred_on,
        "place": PLACES[rng.randrange(len(PLACES))],
        "controller": controller,
        "previous_controller": previous,
        "reported_by": None,
        "responds_to": [],
        "summary": None,
        "sources": _sources(rng),
    }


class SyntheticLog:
    """Rows in position order; `rows(n)` yields positions 1..n."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        # (stream, occurred_on, pair, outlet) of incidents a correction may still target.
        self.correctable: list[tuple[str, date, tuple[str, str], str]] = []

    def rows(self, total: int) -> Iterator[Row]:
        for position in range(1, total + 1):
            yield self._next(position)

    def _next(self, position: int) -> Row:
        draw = self.rng.random()
        if draw < CORRECTED_SHARE and self.correctable:
            return self._correction(position)
        occurred_on = FIRST_DAY + timedelta(days=self.rng.randrange(4000))
        draw -= CORRECTED_SHARE
        if 0 <= draw < SANCTIONS_SHARE:
            data = sanctions_round(occurred_on, self.rng)
            pair = (data["imposing"], data["target"])
        elif 0 <= draw - SANCTIONS_SHARE < TERRITORY_SHARE:
            data = territorial_control(occurred_on, self.rng)
            pair = (data["controller"], data["previous_controller"])
        else:
            return self._expulsion(position, occurred_on)
        stream = f"incident-{uuid4()}"
        return _row(position, stream, 1, f"{data['kind']}.reported", occurred_on, pair, data)

    def _expulsion(self, position: int, occurred_on: date) -> Row:
        stream, pair = f"incident-{uuid4()}", _pair(self.rng)
        outlet = OUTLETS[self.rng.randrange(len(OUTLETS))]
        self._remember((stream, occurred_on, pair, outlet))
        data = expulsion(occurred_on, pair, self.rng.randint(1, 40), outlet)
        return _row(position, stream, 1, "expulsion.reported", occurred_on, pair, data)

    def _remember(self, incident: tuple[str, date, tuple[str, str], str]) -> None:
        if len(self.correctable) < CORRECTABLE_POOL:
            self.correctable.append(incident)
        else:
            self.correctable[self.rng.randrange(CORRECTABLE_POOL)] = incident

    def _correction(self, position: int) -> Row:
        # Swap-remove: each incident is corrected at most once, so always to version 2.
        pool = self.correctable
        index = self.rng.randrange(len(pool))
        pool[index], pool[-1] = pool[-1], pool[index]
        stream, occurred_on, pair, outlet = pool.pop()
        count = self.rng.randint(1, 40)
        data = {
            "changes": {"count": count},
            "note": None,
            "incident": expulsion(occurred_on, pair, count, outlet),
        }
        return _row(position, stream, 2, "incident.corrected", occurred_on, pair, data)


def _row(
    position: int,
    stream: str,
    version: int,
    event_type: str,
    occurred_on: date,
    pair: tuple[str, str],
    data: dict[str, Any],
) -> Row:
    metadata = b'{"actor":"bench","correlation_id":"bench-%d"}' % position
    return (
        position,
        uuid4(),
        stream,
        version,
        event_type,
        EVENT_TYPES[event_type].schema_version,
        occurred_on,
        RECORDED_FROM + timedelta(seconds=position),
        sorted(pair),
        _encode(data),
        metadata,
    )


def check(rows: list[Row]) -> None:
    """Decode every row's data as the rebuild will; fail unless all four types appear."""
    seen = set()
    for row in rows:
        event_type, data = row[4], row[9]
        decoded = corrected_decoder.decode(data) if row[3] == 2 else incident_decoder.decode(data)
        if row[3] == 1 and f"{decoded.__struct_config__.tag}.reported" != event_type:
            raise ValueError(f"{event_type} row decodes as {type(decoded).__name__}")
        seen.add(event_type)
    expected = {
        "expulsion.reported",
        "incident.corrected",
        "sanctions_round.reported",
        "territorial_control.reported",
    }
    if seen != expected:
        raise ValueError(f"sample holds only {sorted(seen)}")
