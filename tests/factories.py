"""Builders of test data."""

import uuid
from typing import Any

import msgspec

from service.log.envelope import NewEvent


def event(n: int = 0, data: dict[str, Any] | None = None, **fields: Any) -> NewEvent:
    """A NewEvent with a fresh id and small data."""
    payload = msgspec.json.encode(data if data is not None else {"n": n})
    defaults: dict[str, Any] = {"id": uuid.uuid4(), "type": "test.happened", "schema_version": 1}
    return NewEvent(data=msgspec.Raw(payload), **(defaults | fields))


def stream() -> str:
    """A fresh stream name."""
    return f"incident-{uuid.uuid4()}"


def expulsion(**changes: Any) -> dict[str, Any]:
    """A valid expulsion report body."""
    body: dict[str, Any] = {
        "kind": "expulsion",
        "occurred_on": "2022-04-18",
        "expelling": "RU",
        "expelled": "NL",
        "count": 15,
        "deadline": "2022-05-02",
        "sources": [{"outlet": "AFP", "url": "https://example.org/a"}],
    }
    return {key: value for key, value in (body | changes).items() if value is not None}


def sanctions_round(**changes: Any) -> dict[str, Any]:
    """A valid sanctions round report body."""
    body: dict[str, Any] = {
        "kind": "sanctions_round",
        "occurred_on": "2022-04-08",
        "imposing": "EU",
        "target": "RU",
        "round": 5,
        "label": "fifth package",
        "measures": ["trade", "financial"],
        "legal_acts": ["Council Regulation (EU) 2022/576"],
        "sources": [{"outlet": "AFP"}],
    }
    return {key: value for key, value in (body | changes).items() if value is not None}


def territorial_control(**changes: Any) -> dict[str, Any]:
    """A valid territorial control report body."""
    body: dict[str, Any] = {
        "kind": "territorial_control",
        "occurred_on": "2022-04-19",
        "place": {"name": "Kreminna", "geonames_id": 704138, "region": "UA-09", "country": "UA"},
        "controller": "RU",
        "previous_controller": "UA",
        "reported_by": "Luhansk regional governor",
        "sources": [{"outlet": "Reuters"}],
    }
    return {key: value for key, value in (body | changes).items() if value is not None}
