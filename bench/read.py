"""Read throughput: GET /v1/countries/RU, the seed chart, the full rebuild and paging the log,
against ceilings.

HTTP: wrk GETs a real `legation serve --demo` and a minimal Litestar app
(bench.baseline_app, same uvicorn settings). Rebuild: the real rebuild over a
synthetic log of N events COPYed into a scratch database, against a raw
server-side cursor scan that decodes each event's data. Paging: wrk sweeps
GET /v1/events?after=...&limit=100 through that rebuilt log page by page,
against the minimal app answering the same page from the same two queries.
Every figure is measured in this run on this machine (they move 20-30 % between runs).
Run: python -m bench.read [--quick] [--events N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from bench import load, synthetic_log
from bench.common import (
    Row,
    free_port,
    legation_argv,
    merge_results,
    print_table,
    scratch_database,
    server,
)
from service.log.database import connect
from service.log.migrations import migrate
from service.projections.rebuild import rebuild

if TYPE_CHECKING:
    import asyncpg

WARMUP_S = 2.0
CONNECTIONS = 16
DEFAULT_EVENTS = 1_000_000
QUICK_EVENTS = 100_000  # keeps `make bench QUICK=1` near 2 minutes on 2 busy cores
REBUILD_TARGET_S = 15.0  # for 1,000,000 events
CHECKED_ROWS = 2_000
PREFETCH = 10_000
SCAN = "SELECT position, id, stream, version, type, data FROM events ORDER BY position"
PAGE_LIMIT = 100


# --- HTTP -------------------------------------------------------------------------------


def _check_get(url: str, expect: bytes) -> None:
    """Fail early, with the answer, unless the first GET is a 200 holding `expect`."""
    with urllib.request.urlopen(url, timeout=10) as response:
        status, body = response.status, response.read()
    if status != 200 or expect not in body:
        raise RuntimeError(f"GET {url}: {status} {body[:500]!r}")


@dataclass(frozen=True)
class Target:
    """One server to load: how to start it and what its first answer must hold."""

    name: str
    argv: Callable[[int], Sequence[str]]
    path: str
    expect: bytes


def http_row(target: Target, dsn: str, seconds: float, logs: Path) -> Row:
    port = free_port()
    with server(target.argv(port), dsn, port, logs / f"{target.name}.log") as base:
        url = f"{base}{target.path}"
        _check_get(url, target.expect)
        load.wrk_get(url, CONNECTIONS, WARMUP_S)
        outcome = load.wrk_get(url, CONNECTIONS, seconds)
    return Row(target.name, outcome.requests_per_s, "requests/s", outcome.p99_ms)


def _minimal_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]


def _legation_argv(port: int) -> list[str]:
    return legation_argv(port, "--demo")


MINIMAL = Target("litestar_minimal_get", _minimal_argv, "/minimal", b'"code":"RU"')
COUNTRY = Target("http_get_country", _legation_argv, "/v1/countries/RU", b'"code":"RU"')
# The seed chart as SVG: rendered once per log position, then answered from memory.
CHART = Target("http_get_chart", _legation_argv, "/v1/relations/EU/RU/chart?members=true", b"<svg")


# The last event of the first page: the page is full and in position order.
FIRST_PAGE_END = b'"position":%d,' % PAGE_LIMIT
MINIMAL_PAGES = Target(
    "litestar_minimal_events_page", _minimal_argv, "/minimal/events", FIRST_PAGE_END
)
EVENTS_PAGES = Target("http_get_events_page", legation_argv, "/v1/events", FIRST_PAGE_END)


def http_rows(seconds: float) -> list[Row]:
    """The minimal app, then the real server (one at a time: they share the cores with wrk)."""
    with scratch_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        minimal = http_row(MINIMAL, dsn, seconds, Path(tmp))
        real = http_row(COUNTRY, dsn, seconds, Path(tmp))
        chart = http_row(CHART, dsn, seconds, Path(tmp))
    return [
        minimal,
        Row(real.name, real.value, real.unit, real.p99_ms, minimal.value),
        Row(chart.name, chart.value, chart.unit, chart.p99_ms, minimal.value),
    ]


def page_row(target: Target, dsn: str, events: int, seconds: float, logs: Path) -> Row:
    port = free_port()
    with server(target.argv(port), dsn, port, logs / f"{target.name}.log") as base:
        _check_get(f"{base}{target.path}?after=0&limit={PAGE_LIMIT}", target.expect)
        pages = load.Pages(f"{base}{target.path}", events // PAGE_LIMIT, PAGE_LIMIT)
        load.wrk_pages(pages, CONNECTIONS, WARMUP_S)
        outcome = load.wrk_pages(pages, CONNECTIONS, seconds)
    # Every page swept is full, so this is exactly the events readers received.
    return Row(target.name, outcome.requests_per_s * PAGE_LIMIT, "events/s", outcome.p99_ms)


def page_rows(dsn: str, events: int, seconds: float) -> list[Row]:
    """The minimal app, then the real server, each sweeping the log from its start."""
    with tempfile.TemporaryDirectory() as tmp:
        minimal = page_row(MINIMAL_PAGES, dsn, events, seconds, Path(tmp))
        real = page_row(EVENTS_PAGES, dsn, events, seconds, Path(tmp))
    return [minimal, Row(real.name, real.value, real.unit, real.p99_ms, minimal.value)]


# --- Rebuild ----------------------------------------------------------------------------


async def load_log(dsn: str, events: int) -> None:
    """COPY a checked synthetic log of `events` events into the migrated `events` table."""
    rows = synthetic_log.SyntheticLog().rows(events)
    # The first rows are decoded as the rebuild will before anything is timed.
    head = list(itertools.islice(rows, CHECKED_ROWS))
    synthetic_log.check(head)
    conn = await connect(dsn)
    try:
        await conn.copy_records_to_table(
            "events", records=itertools.chain(head, rows), columns=synthetic_log.COLUMNS
        )
        # Later appends would draw positions after the loaded ones.
        await conn.execute("SELECT setval('events_position_seq', $1)", events)
        # Hint bits and the visibility map are set now, so neither timed scan pays for them.
        await conn.execute("VACUUM (FREEZE, ANALYZE) events")
    finally:
        await conn.close()


async def _scan(conn: asyncpg.Connection[Any]) -> int:
    decode, count = msgspec.json.decode, 0
    async with conn.transaction():
        async for record in conn.cursor(SCAN, prefetch=PREFETCH):
            decode(record[5])
            count += 1
    return count


async def raw_scan(dsn: str) -> tuple[int, float]:
    """Events scanned and decoded, and the seconds it took."""
    # The service's connection: jsonb arrives as the same raw bytes the rebuild gets.
    conn = await connect(dsn)
    try:
        started = time.perf_counter()
        count = await _scan(conn)
        return count, time.perf_counter() - started
    finally:
        await conn.close()


async def timed_rebuild(dsn: str) -> tuple[int, float]:
    """The position the rebuild reached, and the seconds it took."""
    started = time.perf_counter()
    position = await rebuild(dsn)
    return position, time.perf_counter() - started


def size_label(events: int) -> str:
    """1m, 200k, or the plain number: row names say how large the log was."""
    if events % 1_000_000 == 0:
        return f"{events // 1_000_000}m"
    return f"{events // 1_000}k" if events % 1_000 == 0 else str(events)


@dataclass(frozen=True)
class RebuildRun:
    rows: list[Row]
    seconds: float
    load_seconds: float


def rebuild_rows(dsn: str, events: int) -> RebuildRun:
    """Load the log, scan it raw, then rebuild it (each on the same warm table)."""
    migrate(dsn)
    started = time.perf_counter()
    asyncio.run(load_log(dsn, events))
    loaded = time.perf_counter() - started
    scanned, scan_s = asyncio.run(raw_scan(dsn))
    position, rebuild_s = asyncio.run(timed_rebuild(dsn))
    if scanned != events or position != events:
        raise RuntimeError(f"{events} loaded, {scanned} scanned, rebuilt up to {position}")
    label = size_label(events)
    raw = Row(f"raw_scan_decode_{label}", events / scan_s, "events/s")
    rebuilt = Row(f"rebuild_{label}", events / rebuild_s, "events/s", baseline=raw.value)
    return RebuildRun([raw, rebuilt], rebuild_s, loaded)


def log_rows(events: int, seconds: float) -> tuple[RebuildRun, list[Row]]:
    """Rebuild a synthetic log, then page through it."""
    with scratch_database() as dsn:
        run = rebuild_rows(dsn, events)
        # Paged after the rebuild: with the read models caught up, the server's
        # projector stays idle instead of folding the log while it is measured.
        return run, page_rows(dsn, events, seconds)


# --- Report -----------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_goals(rows: list[Row], events: int, rebuild_s: float) -> None:
    by_name = {row.name: row for row in rows}
    label = size_label(events)
    goals = [
        ("http GET country / litestar minimal GET", "http_get_country", 0.6),
        ("http GET chart / litestar minimal GET", "http_get_chart", 0.5),
        ("http GET events page / litestar minimal", "http_get_events_page", None),
        ("rebuild / raw scan + decode", f"rebuild_{label}", 0.25),
    ]
    print()
    for text, name, target in goals:
        ratio = by_name[name].ratio or 0.0
        verdict = "" if target is None else f"  (target >= {target:g}: {_verdict(ratio >= target)})"
        print(f"{text:<42} {ratio:6.2f}{verdict}")
    # A smaller log is judged by its time scaled to a million events.
    per_million = rebuild_s * 1_000_000 / events
    scaled = "" if events == 1_000_000 else f", scaled from {events:,} events"
    print(
        f"{'rebuild of 1,000,000 events':<42} {per_million:6.1f} s (target < "
        f"{REBUILD_TARGET_S:g} s{scaled}: {_verdict(per_million < REBUILD_TARGET_S)})"
    )


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.read", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP measurement (10)")
    parser.add_argument(
        "--quick", action="store_true", help=f"3 s per HTTP measurement, {QUICK_EVENTS:,} events"
    )
    parser.add_argument("--events", type=int, help=f"events to rebuild ({DEFAULT_EVENTS:,})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    seconds = 3.0 if args.quick else args.seconds
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    started = time.monotonic()
    http = http_rows(seconds)
    run, pages = log_rows(events, seconds)
    rows = http + run.rows + pages
    title = (
        f"reads: HTTP {seconds:g} s per row after {WARMUP_S:g} s warm-up (wrk, {CONNECTIONS} "
        f"connections, 1 thread); rebuild of {events:,} events (loaded in "
        f"{run.load_seconds:.0f} s) took {run.seconds:.1f} s; that log paged "
        f"{PAGE_LIMIT} events a request in order; run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    print_goals(rows, events, run.seconds)
    merge_results(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
