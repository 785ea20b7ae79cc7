"""Append throughput: POST /v1/incidents against the baselines it must keep up with.

Every figure is measured in this run on this machine (they move 20-30 % between
runs), the `eventsourcing` library's recorder (bench/peers.py) included.
Run: python -m bench.append [--seconds N] [--quick] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import uvloop

from bench import load, peers
from bench.common import (
    EVENTS_TABLE,
    INSERT_EVENT,
    Row,
    free_port,
    legation_argv,
    merge_results,
    percentile,
    print_table,
    scratch_database,
    server,
)
from bench.reports import INCIDENT

WARMUP_S = 2.0
# The peer's thread counts, in its order: each concurrency compares with its own.
CONCURRENCY = peers.THREADS
EVENT_DATA = INCIDENT.decode()
EVENT_METADATA = '{"actor": "bench"}'


async def _insert_loop(conn: asyncpg.Connection[Any], until: float, latencies: list[float]) -> None:
    while (start := time.monotonic()) < until:
        event_id = uuid4()
        # One statement outside a transaction block: PostgreSQL commits it on its own.
        await conn.fetchval(
            INSERT_EVENT,
            event_id,
            f"raw-{event_id}",
            1,
            "IncidentReported",
            EVENT_DATA,
            EVENT_METADATA,
        )
        latencies.append((time.monotonic() - start) * 1000)


async def _raw_inserts(dsn: str, connections: int, seconds: float) -> tuple[float, float | None]:
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        await conns[0].execute(EVENTS_TABLE)
        results: list[float] = []
        for phase in (WARMUP_S, seconds):
            results = []
            until = time.monotonic() + phase
            await asyncio.gather(*(_insert_loop(conn, until, results) for conn in conns))
        return len(results) / seconds, percentile(results, 0.99)
    finally:
        for conn in conns:
            await conn.close()


def raw_rows(dsn: str, seconds: float) -> list[Row]:
    """One-event autocommit INSERTs straight through asyncpg: the database's own ceiling."""
    rows = []
    for connections in CONCURRENCY:
        # uvloop, as the servers run on it, so the client side costs the same.
        rate, p99 = uvloop.run(_raw_inserts(dsn, connections, seconds))
        rows.append(Row(f"raw_asyncpg_insert_c{connections}", rate, "events/s", p99))
    return rows


@dataclass(frozen=True)
class Run:
    """What every measurement in one run shares."""

    dsn: str
    seconds: float
    generator: str
    logs: Path


def http_rows(run: Run, name: str, argv: Callable[[int], Sequence[str]], path: str) -> list[Row]:
    """Start the server `argv(port)` and load its POST `path` at each concurrency."""
    port = free_port()
    rows = []
    with server(argv(port), run.dsn, port, run.logs / f"{name}.log") as base:
        post = load.Post(f"{base}{path}", INCIDENT)
        load.check_once(post)
        for connections in CONCURRENCY:
            load.run(run.generator, post, connections, WARMUP_S)
            outcome = load.run(run.generator, post, connections, run.seconds)
            rows.append(
                Row(f"{name}_c{connections}", outcome.requests_per_s, "requests/s", outcome.p99_ms)
            )
    return rows


def _minimal_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]


def measure(seconds: float, generator: str) -> list[Row]:
    """Every row of the table, each server started and stopped in turn."""
    peer = peers.measure(seconds, peers.SINGLE)
    with scratch_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        run = Run(dsn, seconds, generator, Path(tmp))
        raw = raw_rows(dsn, seconds)
        minimal = http_rows(run, "litestar_minimal_post", _minimal_argv, "/events")
        real = http_rows(run, "http_post_incident", legation_argv, "/v1/incidents")
    return raw + minimal + peer + _against(real, minimal) + _against_peer(real, peer)


def _against(real: list[Row], baselines: list[Row]) -> list[Row]:
    pairs = zip(real, baselines, strict=True)
    return [Row(r.name, r.value, r.unit, r.p99_ms, b.value) for r, b in pairs]


def _against_peer(real: list[Row], peer: list[Row]) -> list[Row]:
    """Each concurrency against the peer with as many threads; a request appends one event."""
    return [
        Row(f"{r.name}_vs_eventsourcing", r.value, "events/s", r.p99_ms, p.value)
        for r, p in zip(real, peer, strict=True)
    ]


def print_goals(rows: list[Row]) -> None:
    by_name = {row.name: row for row in rows}
    goals = [
        ("http c16 / litestar minimal c16", "http_post_incident_c16", 0.8),
        ("http c16 / eventsourcing 16 threads", "http_post_incident_c16_vs_eventsourcing", 2.0),
        ("http c1 / litestar minimal c1", "http_post_incident_c1", 0.75),
        ("http c1 / eventsourcing 1 thread", "http_post_incident_c1_vs_eventsourcing", None),
    ]
    print()
    for label, name, target in goals:
        ratio = by_name[name].ratio or 0.0
        verdict = "" if target is None else f"  (target >= {target:g}: "
        verdict += "" if target is None else ("met)" if ratio >= target else "MISSED)")
        print(f"{label:<42} {ratio:6.2f}{verdict}")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.append", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    seconds = 3.0 if args.quick else args.seconds
    generator = load.generator_name(args.client)
    started = time.monotonic()
    rows = measure(seconds, generator)
    title = (
        f"append throughput: {seconds:g} s per row after {WARMUP_S:g} s warm-up, "
        f"HTTP load by {generator}, run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    print_goals(rows)
    merge_results(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
