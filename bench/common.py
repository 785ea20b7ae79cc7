"""Shared plumbing: scratch database, server processes, the result table and file."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.config import settings_from_env
from service.http.keys import create_key
from service.log.database import connect
from service.log.migrations import migrate

ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = Path(__file__).resolve().parent / "results.json"

# The event-store shape of BENCHMARKS.md, so raw and minimal-app figures compare with it.
EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS bench_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id uuid NOT NULL,
    stream text NOT NULL,
    version int NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, version)
)
"""
INSERT_EVENT = """
INSERT INTO bench_events (id, stream, version, type, data, metadata)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING position
"""


@dataclass(frozen=True)
class Row:
    """One measurement: `value` per second, compared with `baseline` when there is one."""

    name: str
    value: float
    unit: str
    p99_ms: float | None = None
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None when nothing was sampled."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def free_port() -> int:
    """A port the kernel just reported free (each server gets its own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointed at database `name`."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# The Authorization header of the current scratch database's key (writes need one).
AUTH: dict[str, str] = {}


async def _make_key(dsn: str) -> str:
    conn = await connect(dsn)
    try:
        # Hashed as the servers it benchmarks (started with this environment) check it.
        secret = settings_from_env().key_secret
        return await create_key(conn, f"bench-{os.getpid()}", ("admin",), secret)
    finally:
        await conn.close()


@contextmanager
def empty_database(suffix: str) -> Iterator[str]:
    """A fresh database for this run with nothing in it; dropped afterwards."""
    name = f"legation_bench_{os.getpid()}{suffix}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield with_database(ADMIN_DSN, name)
    finally:
        # FORCE: a server that ignored SIGTERM may still hold connections.
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextmanager
def scratch_database(suffix: str = "") -> Iterator[str]:
    """A fresh, migrated database for this run with an admin key in AUTH; dropped afterwards."""
    with empty_database(suffix) as dsn:
        migrate(dsn)
        AUTH["Authorization"] = f"Bearer {asyncio.run(_make_key(dsn))}"
        yield dsn


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        if _healthy(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    # SIGINT lets uvicorn run the lifespan shutdown (pool close) like Ctrl-C would.
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def server(
    argv: Sequence[str], dsn: str, port: int, log: Path, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run `argv` as a server on `port`; yields its base URL once /health answers."""
    # The rate limit would throttle the load generator, which is one client.
    env = {**os.environ, "DATABASE_URL": dsn, "LEGATION_RATE_LIMIT": "0", **(settings or {})}
    # Output goes to a file: an unread pipe would fill up and stall the server.
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, f"{base}/health", log, timeout=60)
        yield base
    finally:
        _stop(proc)


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(rows: Sequence[Row], title: str) -> None:
    """The rows as a fixed-width table."""
    print(title)
    header = f"{'name':<42} {'value':>10} {'unit':<11} {'p99 ms':>7} {'baseline':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<42} {_fmt(row.value):>10} {row.unit:<11} {_fmt(row.p99_ms, 1):>7} "
            f"{_fmt(row.baseline):>10} {_fmt(row.ratio, 2):>6}"
        )


def merge_results(rows: Sequence[Row], path: Path = RESULTS) -> None:
    """Add or replace `rows` in the results file, keeping rows other benches wrote."""
    results = json.loads(path.read_text()) if path.exists() else {}
    for row in rows:
        results[row.name] = {
            "value": round(row.value, 1),
            "unit": row.unit,
            "baseline": None if row.baseline is None else round(row.baseline, 1),
            "ratio": None if row.ratio is None else round(row.ratio, 3),
        }
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


@contextmanager
def separate_projector(dsn: str, log: Path) -> Iterator[dict[str, str]]:
    """`legation project` running on `dsn`; yields the settings of a serve that leaves it be."""
    env = {**os.environ, "DATABASE_URL": dsn}
    argv = [str(Path(sys.executable).parent / "legation"), "project"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield {"LEGATION_PROJECTOR": "separate"}
    finally:
        _stop(proc)


def legation_argv(port: int, *extra: str) -> list[str]:
    """The command line of `legation serve` from this venv on `port`."""
    return [str(Path(sys.executable).parent / "legation"), "serve", "--port", str(port), *extra]
