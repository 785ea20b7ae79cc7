"""Two boxes' worth on one: reads from a standby-backed server while the primary ingests, and
the pool through PgBouncer against direct connections.

A primary and its streaming standby are made as the test suite makes them
(tests/clusters.py: initdb, pg_basebackup -R; fsync off, so the primary's writes
are cheaper than on a durable one). A `legation serve` on the primary takes
1,000-report batches back to back while wrk GETs `/v1/countries/RU` and sweeps
`/v1/events` pages from a `LEGATION_READ_ONLY` server on the standby; each is
compared with the same reads with no ingest running. Meanwhile the replication lag
(`pg_stat_replication.replay_lag`, and log positions the standby trails) is
sampled, and a writer times how long `min_position` reads of its own writes wait on
the standby. Then PgBouncer (transaction mode) goes in front of the primary and
POSTs and event pages through it are compared with a direct server.
Run: python -m bench.standby [--seconds N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench import ingest, load, reports
from bench.common import (
    AUTH,
    Row,
    free_port,
    legation_argv,
    merge_results,
    percentile,
    print_table,
    server,
)
from service.config import settings_from_env
from service.http.keys import create_key
from service.log.database import connect
from service.log.migrations import migrate
from tests.clusters import Cluster, pgbouncer, pgbouncer_program, postgres_bin
from tests.clusters import primary_and_standby as clusters

WARMUP_S = 2.0
CONNECTIONS = 16
PAGE_LIMIT = 100
SEED_BATCHES = 20  # 20,000 events to page through before anything is measured
SAMPLE_EVERY = 0.1
LAG = """
SELECT coalesce(extract(epoch FROM replay_lag), 0)::float8 FROM pg_stat_replication LIMIT 1
"""
HEAD = "SELECT coalesce(max(position), 0) FROM events"
BACKENDS = """
SELECT count(*) FROM pg_stat_activity WHERE datname = 'legation' AND pid <> pg_backend_pid()
"""


@dataclass
class Samples:
    """What the samplers saw while the primary ingested."""

    lag_s: list[float] = field(default_factory=list)
    behind: list[int] = field(default_factory=list)
    primary_waits_ms: list[float] = field(default_factory=list)  # until projected there
    standby_waits_ms: list[float] = field(default_factory=list)  # then, until on the standby
    batches: int = 0


async def _prepare(primary: Cluster) -> str:
    conn = await asyncpg.connect(primary.dsn())
    try:
        await conn.execute("CREATE DATABASE legation")
    finally:
        await conn.close()
    dsn = primary.dsn("legation")
    await asyncio.to_thread(migrate, dsn)
    key_conn = await connect(dsn)
    try:
        secret = settings_from_env().key_secret
        AUTH["Authorization"] = f"Bearer {await create_key(key_conn, 'bench', ('admin',), secret)}"
    finally:
        await key_conn.close()
    return dsn


def _batches(base: str) -> httpx.Client:
    headers = {"Content-Type": "application/x-ndjson", **AUTH}
    return httpx.Client(base_url=base, headers=headers, timeout=60)


def _seed(base: str) -> int:
    with _batches(base) as client:
        for _ in range(SEED_BATCHES):
            answer = client.post("/v1/incidents:batch", content=ingest.NDJSON_BODY)
            answer.raise_for_status()
        head: int = answer.json()["last_position"]
    return head


def _wait_replayed(standby: str, head: int) -> None:
    answer = httpx.get(f"{standby}/v1/events", params={"min_position": head, "limit": 1})
    answer.raise_for_status()


def _reads(standby: str, pages: int, seconds: float) -> tuple[load.Outcome, load.Outcome]:
    country = load.wrk_get(f"{standby}/v1/countries/RU", CONNECTIONS, seconds)
    sweep = load.Pages(f"{standby}/v1/events", pages, PAGE_LIMIT)
    return country, load.wrk_pages(sweep, CONNECTIONS, seconds)


async def _sample_lag(primary: str, standby: str, samples: Samples, stop: threading.Event) -> None:
    on_primary, on_standby = await connect(primary), await connect(standby)
    try:
        while not stop.is_set():
            samples.lag_s.append(await on_primary.fetchval(LAG))
            head, replayed = await on_primary.fetchval(HEAD), await on_standby.fetchval(HEAD)
            samples.behind.append(max(0, head - replayed))
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        await on_primary.close()
        await on_standby.close()


def _time_own_reads(writer: str, reader: str, samples: Samples, stop: threading.Event) -> None:
    # One write, then its read on the standby with min_position: how long that read waits.
    with httpx.Client(headers=AUTH, timeout=30) as http:
        while not stop.is_set():
            written = http.post(f"{writer}/v1/incidents", content=reports.REPORTS[0])
            written.raise_for_status()
            wanted = {"min_position": written.headers["legation-position"]}
            # First where it was written (the projector's share), then the standby's extra.
            for base, waits in (
                (writer, samples.primary_waits_ms),
                (reader, samples.standby_waits_ms),
            ):
                started = time.monotonic()
                http.get(f"{base}/v1/countries/RU", params=wanted).raise_for_status()
                waits.append((time.monotonic() - started) * 1000)
            time.sleep(SAMPLE_EVERY)


@contextmanager
def _ingesting(writer: str, primary: str, standby: str, reader: str) -> Iterator[Samples]:
    """Batches posted to `writer` back to back, lag sampled, own reads timed, for the block."""
    samples, stop = Samples(), threading.Event()

    def post() -> None:
        with _batches(writer) as client:
            while not stop.is_set():
                client.post("/v1/incidents:batch", content=ingest.NDJSON_BODY).raise_for_status()
                samples.batches += 1

    workers: list[Callable[[], None]] = [
        post,
        lambda: asyncio.run(_sample_lag(primary, standby, samples, stop)),
        lambda: _time_own_reads(writer, reader, samples, stop),
    ]
    threads = [threading.Thread(target=work, daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(WARMUP_S)  # the ingest and replication reach their pace
        yield samples
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def standby_rows(pair: tuple[Cluster, Cluster], seconds: float, logs: Path) -> list[Row]:
    """Reads on the standby-backed server with no ingest, then with ingest on the primary."""
    primary, standby = pair
    primary_dsn, standby_dsn = asyncio.run(_prepare(primary)), standby.dsn("legation")
    writer_port, reader_port = free_port(), free_port()
    reading = {"LEGATION_READ_ONLY": "true", "LEGATION_READ_WAIT_SECONDS": "30"}
    with ExitStack() as running:
        writer = running.enter_context(
            server(legation_argv(writer_port), primary_dsn, writer_port, logs / "primary.log")
        )
        head = _seed(writer)
        reading["LEGATION_PRIMARY_URL"] = writer
        reader = running.enter_context(
            server(
                legation_argv(reader_port), standby_dsn, reader_port, logs / "reader.log", reading
            )
        )
        _wait_replayed(reader, head)
        pages = head // PAGE_LIMIT
        _reads(reader, pages, WARMUP_S)
        quiet_country, quiet_pages = _reads(reader, pages, seconds)
        with _ingesting(writer, primary_dsn, standby_dsn, reader) as samples:
            counted, started = samples.batches, time.monotonic()
            busy_country, busy_pages = _reads(reader, pages, seconds)
            ingested = (
                (samples.batches - counted) * reports.BATCH_LINES / (time.monotonic() - started)
            )
            on_primary = _compared_on_primary(writer, seconds)
        _print_samples(samples, ingested)
    return [
        Row(
            "standby_get_country", quiet_country.requests_per_s, "requests/s", quiet_country.p99_ms
        ),
        Row(
            "standby_get_country_during_ingest",
            busy_country.requests_per_s,
            "requests/s",
            busy_country.p99_ms,
            quiet_country.requests_per_s,
        ),
        Row(
            "standby_events_page",
            quiet_pages.requests_per_s * PAGE_LIMIT,
            "events/s",
            quiet_pages.p99_ms,
        ),
        Row(
            "standby_events_page_during_ingest",
            busy_pages.requests_per_s * PAGE_LIMIT,
            "events/s",
            busy_pages.p99_ms,
            quiet_pages.requests_per_s * PAGE_LIMIT,
        ),
        *(
            [
                Row(
                    "primary_get_country_during_ingest",
                    on_primary.requests_per_s,
                    "requests/s",
                    on_primary.p99_ms,
                    quiet_country.requests_per_s,
                )
            ]
            if on_primary
            else []
        ),
    ]


def _compared_on_primary(writer: str, seconds: float) -> load.Outcome | None:
    """The same GETs from the primary-backed server while it ingests (None if wrk timed out)."""
    try:
        return load.wrk_get(f"{writer}/v1/countries/RU", CONNECTIONS, seconds)
    except RuntimeError as failed:
        # Its standings are recomputed at every new position while it also ingests
        # and projects: answers can take longer than wrk's 5 s timeout.
        summary = str(failed).splitlines()
        rate = next((line for line in summary if line.startswith("Requests/sec")), "")
        print(f"GET /v1/countries/RU from the primary-backed server timed out under ingest: {rate}")
        return None


def _print_samples(samples: Samples, ingested: float) -> None:
    def stat(values: Sequence[float], fraction: float) -> float:
        return percentile(values, fraction) or 0.0

    print(
        f"during ingest ({ingested:,.0f} events/s on the primary while the standby was read): "
        f"replay lag p50 {stat(samples.lag_s, 0.5) * 1000:.0f} ms, max "
        f"{max(samples.lag_s, default=0) * 1000:.0f} ms; the standby's log trailed by p50 "
        f"{stat(samples.behind, 0.5):,.0f}, max {max(samples.behind, default=0):,} events"
    )
    print(
        f"a min_position read of one's own write ({len(samples.standby_waits_ms)} writes) waited "
        f"on the primary p50 {stat(samples.primary_waits_ms, 0.5):.0f} ms, p99 "
        f"{stat(samples.primary_waits_ms, 0.99):.0f} ms, then on the standby p50 "
        f"{stat(samples.standby_waits_ms, 0.5):.0f} ms, p99 "
        f"{stat(samples.standby_waits_ms, 0.99):.0f} ms more"
    )


def _backends(dsn: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            found: int = await conn.fetchval(BACKENDS)
            return found
        finally:
            await conn.close()

    return asyncio.run(count())


def _through(base: str, pages: int, seconds: float) -> tuple[load.Outcome, load.Outcome]:
    post = load.Post(f"{base}/v1/incidents", reports.REPORTS[0])
    load.check_once(post)
    load.run("wrk", post, CONNECTIONS, WARMUP_S)
    posts = load.run("wrk", post, CONNECTIONS, seconds)
    sweep = load.Pages(f"{base}/v1/events", pages, PAGE_LIMIT)
    return posts, load.wrk_pages(sweep, CONNECTIONS, seconds)


def pooler_rows(primary: Cluster, program: Path, seconds: float, logs: Path) -> list[Row]:
    """POSTs and event pages through PgBouncer against the same straight to PostgreSQL."""
    dsn = primary.dsn("legation")
    pages = SEED_BATCHES * reports.BATCH_LINES // PAGE_LIMIT
    measured: dict[str, tuple[load.Outcome, load.Outcome, int]] = {}
    with pgbouncer(program, primary.port, pool_size=4) as bouncer_port:
        pooled = {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{bouncer_port}/legation",
            "LEGATION_SESSION_DATABASE_URL": dsn,
            "LEGATION_STATEMENT_CACHE_SIZE": "0",
        }
        for name, settings in (("direct", {}), ("pgbouncer", pooled)):
            port = free_port()
            argv = legation_argv(port)
            with server(argv, dsn, port, logs / f"{name}.log", settings) as base:
                posts, sweep = _through(base, pages, seconds)
                measured[name] = (posts, sweep, _backends(dsn))
    (d_post, d_pages, d_conns), (p_post, p_pages, p_conns) = (
        measured["direct"],
        measured["pgbouncer"],
    )
    print(f"PostgreSQL backends on the database: direct {d_conns}, through PgBouncer {p_conns}")
    return [
        Row("direct_post_incident", d_post.requests_per_s, "requests/s", d_post.p99_ms),
        Row(
            "pgbouncer_post_incident",
            p_post.requests_per_s,
            "requests/s",
            p_post.p99_ms,
            d_post.requests_per_s,
        ),
        Row("direct_events_page", d_pages.requests_per_s * PAGE_LIMIT, "events/s", d_pages.p99_ms),
        Row(
            "pgbouncer_events_page",
            p_pages.requests_per_s * PAGE_LIMIT,
            "events/s",
            p_pages.p99_ms,
            d_pages.requests_per_s * PAGE_LIMIT,
        ),
    ]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.standby", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    seconds = 3.0 if args.quick else args.seconds
    bin_dir, program = postgres_bin(), pgbouncer_program()
    if bin_dir is None:
        print("bench.standby: no initdb/pg_ctl/pg_basebackup found; skipped", file=sys.stderr)
        return 0
    started = time.monotonic()
    with clusters(bin_dir) as pair, tempfile.TemporaryDirectory() as tmp:
        rows = standby_rows(pair, seconds, Path(tmp))
        if program is None:
            print("bench.standby: pgbouncer is not installed; its rows are skipped")
        else:
            rows += pooler_rows(pair[0], program, seconds, Path(tmp))
    print_table(
        rows,
        f"standby and pooler: {seconds:g} s per row after {WARMUP_S:g} s warm-up (wrk, "
        f"{CONNECTIONS} connections); ingest of {reports.BATCH_LINES:,}-report batches on the "
        f"primary; run took {time.monotonic() - started:.0f} s",
    )
    merge_results(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
