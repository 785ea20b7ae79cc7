"""The incident reports the append benches send, and the `eventsourcing` peer stores."""

from __future__ import annotations

import msgspec

# What bench/append.py posts, one report per request.
INCIDENT = msgspec.json.encode(
    {
        "kind": "expulsion",
        "occurred_on": "2022-04-18",
        "expelling": "RU",
        "expelled": "NL",
        "count": 15,
        "sources": [{"outlet": "AFP"}],
    }
)
BATCH_LINES = 1_000


def _report(number: int) -> bytes:
    report = {
        "kind": "expulsion",
        "occurred_on": "2022-04-19",
        "expelling": "RU",
        "expelled": "NL",
        # A different count on every line: each line is a different report.
        "count": 1 + number,
        "sources": [{"outlet": "AFP"}],
    }
    return msgspec.json.encode(report)


# The lines of bench/ingest.py's batch, built once: no timed loop pays for encoding them.
REPORTS = [_report(number) for number in range(BATCH_LINES)]
