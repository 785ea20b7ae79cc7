"""Batch ingest throughput: POST /v1/incidents:batch against raw unnest inserts.

One client sends 1,000-report NDJSON batches back to back to a real `legation serve`;
the baseline is 100-row `INSERT ... SELECT FROM unnest(...)` statements through asyncpg
on one connection, measured in the same run. Measured twice: with the projector inside
`legation serve` (the default) and in a `legation project` process of its own
(LEGATION_PROJECTOR=separate). Also against the `eventsourcing` library's recorder
appending 100 of the same reports per append (bench/peers.py), in this run.
Run: python -m bench.ingest [--seconds N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import uvloop

from bench import peers
from bench.common import (
    AUTH,
    EVENTS_TABLE,
    Row,
    free_port,
    legation_argv,
    merge_results,
    percentile,
    print_table,
    scratch_database,
    separate_projector,
    server,
)
from bench.reports import BATCH_LINES, REPORTS

WARMUP_S = 2.0
HTTP_NAME = f"http_batch_ingest_{BATCH_LINES}"
RAW_ROWS = 100
EVENT_METADATA = '{"actor": "bench"}'
RAW_INSERT = """
INSERT INTO bench_events (id, stream, version, type, data, metadata)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[], $6::jsonb[])
"""


NDJSON_BODY = b"\n".join(REPORTS) + b"\n"
EVENT_DATA = [report.decode() for report in REPORTS]


def _raw_columns(chunk: int) -> list[list[Any]]:
    """One statement's parallel arrays; fresh ids and streams, as every report is new."""
    ids = [uuid4() for _ in range(RAW_ROWS)]
    start = chunk * RAW_ROWS % BATCH_LINES
    return [
        ids,
        [f"raw-{event_id}" for event_id in ids],
        [1] * RAW_ROWS,
        ["IncidentReported"] * RAW_ROWS,
        EVENT_DATA[start : start + RAW_ROWS],
        [EVENT_METADATA] * RAW_ROWS,
    ]


async def _insert_for(conn: asyncpg.Connection[Any], seconds: float) -> tuple[int, float]:
    """Statements run in `seconds` (one implicit transaction each), and the time they took."""
    started = time.monotonic()
    statements = 0
    while time.monotonic() - started < seconds:
        await conn.execute(RAW_INSERT, *_raw_columns(statements))
        statements += 1
    return statements, time.monotonic() - started


async def _raw_unnest(dsn: str, seconds: float) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(EVENTS_TABLE)
        await _insert_for(conn, WARMUP_S)
        statements, elapsed = await _insert_for(conn, seconds)
        return statements * RAW_ROWS / elapsed
    finally:
        await conn.close()


def raw_row(dsn: str, seconds: float) -> Row:
    """The database's ceiling for 100-event transactions from one connection."""
    # uvloop, as the server runs on it, so the client side costs the same.
    rate = uvloop.run(_raw_unnest(dsn, seconds))
    return Row(f"raw_asyncpg_batch_insert_{RAW_ROWS}", rate, "events/s")


def _check_once(client: httpx.Client) -> None:
    """Fail early, with the server's answer, unless a batch appends 1,000 new incidents."""
    response = client.post("/v1/incidents:batch", content=NDJSON_BODY)
    if response.status_code != 201:
        raise RuntimeError(f"batch answered {response.status_code}: {response.text[:500]}")
    items = response.json()["items"]
    if len(items) != BATCH_LINES or any(item["duplicate"] for item in items):
        raise RuntimeError(f"batch appended {len(items)} items, some duplicates: {items[:3]}")


def _post_for(client: httpx.Client, seconds: float) -> tuple[list[float], float]:
    """Batch latencies (ms) over `seconds` of back-to-back posts, and the time they took."""
    latencies: list[float] = []
    started = time.monotonic()
    while (start := time.monotonic()) - started < seconds:
        response = client.post("/v1/incidents:batch", content=NDJSON_BODY)
        if response.status_code != 201:
            raise RuntimeError(f"batch answered {response.status_code}: {response.text[:500]}")
        latencies.append((time.monotonic() - start) * 1000)
    return latencies, time.monotonic() - started


def http_row(
    dsn: str, seconds: float, logs: Path, name: str, settings: dict[str, str] | None = None
) -> Row:
    """Batches from one keep-alive client to a real server; events/s and p99 per batch."""
    port = free_port()
    headers = {"Content-Type": "application/x-ndjson", **AUTH}
    with (
        server(legation_argv(port), dsn, port, logs / "legation.log", settings) as base,
        httpx.Client(base_url=base, headers=headers, timeout=30) as client,
    ):
        _check_once(client)
        _post_for(client, WARMUP_S)
        latencies, elapsed = _post_for(client, seconds)
    # Elapsed, not `seconds`: a batch takes long enough that the last one overruns.
    rate = BATCH_LINES * len(latencies) / elapsed
    return Row(name, rate, "events/s", percentile(latencies, 0.99))


def separate_row(seconds: float, baseline: Row) -> Row:
    """The same against serve with its projector in a `legation project` process.

    On a database of its own: a log left by the inline run would first have to be
    projected by the new process, during the measurement.
    """
    with (
        scratch_database("_separate") as dsn,
        tempfile.TemporaryDirectory() as tmp,
        separate_projector(dsn, Path(tmp) / "project.log") as settings,
    ):
        http = http_row(dsn, seconds, Path(tmp), f"{HTTP_NAME}_separate_projector", settings)
    return Row(http.name, http.value, http.unit, http.p99_ms, baseline.value)


def measure(seconds: float) -> tuple[list[Row], Row]:
    """Every row of the table, on scratch databases dropped afterwards; and the peer's best."""
    peer = peers.measure(seconds, peers.BATCHES)
    with scratch_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        raw = raw_row(dsn, seconds)
        http = http_row(dsn, seconds, Path(tmp), HTTP_NAME)
    separate = separate_row(seconds, raw)
    # Its faster thread count: the peer at its best.
    best = max(peer, key=lambda row: row.value)
    rows = [raw, *peer, Row(http.name, http.value, http.unit, http.p99_ms, raw.value), separate]
    name = f"{http.name}_vs_eventsourcing"
    return [*rows, Row(name, http.value, http.unit, http.p99_ms, best.value)], best


def print_goals(rows: list[Row], peer: Row) -> None:
    by_name = {row.name: row for row in rows}
    goals = [
        ("http batch / raw unnest x100", HTTP_NAME, 0.5),
        ("the same, projector in its own process", f"{HTTP_NAME}_separate_projector", 0.5),
        (f"http batch / {peer.name}", f"{HTTP_NAME}_vs_eventsourcing", 1.0),
    ]
    print()
    for label, name, target in goals:
        ratio = by_name[name].ratio or 0.0
        verdict = "met" if ratio >= target else "MISSED"
        print(f"{label:<42} {ratio:6.2f}  (target >= {target:g}: {verdict})")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    seconds = 3.0 if args.quick else args.seconds
    started = time.monotonic()
    rows, peer = measure(seconds)
    title = (
        f"batch ingest: {seconds:g} s per row after {WARMUP_S:g} s warm-up, "
        f"{BATCH_LINES:,} reports per HTTP batch, run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    print_goals(rows, peer)
    merge_results(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
