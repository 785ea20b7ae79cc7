"""The peer: the `eventsourcing` library's PostgreSQL recorder, appending the same reports.

eventsourcing 9.5.6's PostgresApplicationRecorder (the recorder its applications use: it
gives every event a global notification id, as Legation's log gives a position) on a
database of its own, durable (synchronous_commit on), no HTTP in front. Every append
stores the first events of new aggregates whose state is a JSON report the append benches
send: bench/append.py's report, one per append, or bench/ingest.py's batch lines, 100 per
append. bench/append.py and bench/ingest.py run it for their "vs eventsourcing" ratios.
Run: python -m bench.peers [--seconds N] [--quick]   (needs `pip install -e '.[bench]'`)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from bench.common import Row, empty_database, merge_results, percentile, print_table
from bench.reports import BATCH_LINES, INCIDENT, REPORTS

WARMUP_S = 2.0
THREADS = (1, 16)
TOPIC = "legation.bench:IncidentReported"
PER_BATCH = 100
# What each append stores, in turn: append.py's report alone, or 100 of ingest.py's lines.
SINGLE = [[INCIDENT]]
BATCHES = [REPORTS[start : start + PER_BATCH] for start in range(0, BATCH_LINES, PER_BATCH)]


@contextmanager
def _recorder(dsn: str) -> Iterator[PostgresApplicationRecorder]:
    """The recorder on `dsn` with its table, a pool connection for each thread."""
    parts = urlsplit(dsn)
    datastore = PostgresDatastore(
        parts.path.lstrip("/"),
        parts.hostname or "127.0.0.1",
        parts.port or 5432,
        parts.username or "postgres",
        parts.password or "",
        pool_size=max(THREADS),
    )
    try:
        with datastore.get_connection() as conn:
            durability = conn.execute("SHOW synchronous_commit").fetchone()
        # A figure from commits that may be lost would flatter the peer.
        if durability != {"synchronous_commit": "on"}:
            raise RuntimeError(f"the peer would not commit durably: {durability}")
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        yield recorder
    finally:
        datastore.close()


def _append_for(
    recorder: PostgresApplicationRecorder,
    appends: Sequence[Sequence[bytes]],
    until: float,
    latencies: list[float],
) -> None:
    done = 0
    while (start := time.monotonic()) < until:
        events = [
            StoredEvent(originator_id=uuid4(), originator_version=1, topic=TOPIC, state=state)
            for state in appends[done % len(appends)]
        ]
        recorder.insert_events(events)
        latencies.append((time.monotonic() - start) * 1000)
        done += 1


def _rate(
    recorder: PostgresApplicationRecorder,
    appends: Sequence[Sequence[bytes]],
    threads: int,
    seconds: float,
) -> tuple[float, float | None]:
    """Events/s and p99 ms per append of `threads` threads appending for `seconds`."""
    latencies: list[float] = []
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(_append_for, recorder, appends, started + seconds, latencies)
            for _ in range(threads)
        ]
        for future in futures:
            future.result()  # a failed append fails the bench, not just its thread
    # Elapsed, not `seconds`: the last appends overrun.
    elapsed = time.monotonic() - started
    return len(latencies) * len(appends[0]) / elapsed, percentile(latencies, 0.99)


def measure(seconds: float, appends: Sequence[Sequence[bytes]]) -> list[Row]:
    """The peer at each thread count, on a scratch database dropped afterwards."""
    per_append = len(appends[0])
    rows = []
    with empty_database("_peer") as dsn, _recorder(dsn) as recorder:
        for threads in THREADS:
            _rate(recorder, appends, threads, WARMUP_S)
            rate, p99 = _rate(recorder, appends, threads, seconds)
            rows.append(Row(f"eventsourcing_append_{per_append}_c{threads}", rate, "events/s", p99))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    started = time.monotonic()
    rows = measure(seconds, SINGLE) + measure(seconds, BATCHES)
    title = (
        f"eventsourcing 9.5.6 PostgreSQL recorder: {seconds:g} s per row after {WARMUP_S:g} s "
        f"warm-up, run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    merge_results(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
