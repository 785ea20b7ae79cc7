"""`legation serve` with its pool behind PgBouncer in transaction mode, its sessions direct."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psycopg
import pytest

from tests.clusters import pgbouncer, pgbouncer_program
from tests.factories import expulsion
from tests.process.test_replicas import holders, named, stop_all
from tests.servers import start

PROGRAM = pgbouncer_program()
# Under CI (.ci/run installs them) a missing program fails these tests, never skips them.
pytestmark = pytest.mark.skipif(
    PROGRAM is None and not os.environ.get("CI"),
    reason="pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)",
)
POOL_SIZE = 3  # PgBouncer's server connections per database
WRITES = 40
# Backends on the test's database other than the direct sessions and the asking one.
POOLED_BACKENDS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND application_name <> 'legation-session'
"""
LISTENING = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND application_name = 'legation-session'
   AND query LIKE 'LISTEN %'
"""


@pytest.fixture
def bouncer(dsn: str) -> Iterator[str]:
    """The test's database through PgBouncer: its DSN."""
    server = urlsplit(dsn)
    if not server.hostname or server.hostname.startswith("/") or server.port is None:
        pytest.skip("the suite's PostgreSQL has no TCP port for PgBouncer: set DATABASE_URL")
    assert PROGRAM is not None
    with pgbouncer(PROGRAM, server.port, POOL_SIZE) as port:
        yield urlunsplit(server._replace(netloc=f"postgres@127.0.0.1:{port}"))


async def _fetchval(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _transactions(bouncer: str) -> int:
    """Transactions PgBouncer has passed to the database, from its admin console."""
    database = urlsplit(bouncer).path.lstrip("/")
    admin = urlsplit(bouncer)._replace(path="/pgbouncer").geturl()
    # The admin console speaks only the simple protocol: nothing prepared.
    with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
        cursor = conn.execute("SHOW STATS")
        names = [column.name for column in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return sum(int(row["total_xact_count"]) for row in rows if row["database"] == database)


async def _write_and_read(http: httpx.AsyncClient, i: int) -> int:
    written = await http.post("/v1/incidents", json=expulsion(count=i + 1))
    assert written.status_code == 201, written.text
    position = int(written.headers["legation-position"])
    read = await http.get(written.headers["location"], params={"min_position": position})
    assert read.status_code == 200, read.text
    return position


async def test_writes_reads_and_the_projector_run_through_pgbouncer(
    dsn: str, admin_key: str, bouncer: str, tmp_path: Path
) -> None:
    settings = {
        "session_database_url": named(dsn, "legation-session"),
        "statement_cache_size": "0",  # PgBouncer before 1.21 keeps no prepared statements
        "rate_limit": "0",
    }
    log = tmp_path / "server.log"
    base, server = await asyncio.to_thread(
        start, named(bouncer, "legation-pooled"), settings, stderr=log
    )
    try:
        headers = {"Authorization": f"Bearer {admin_key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
            positions = await asyncio.gather(*(_write_and_read(http, i) for i in range(WRITES)))
            lines = b"".join(json.dumps(expulsion(expelled="BE")).encode() + b"\n" for _ in "ab")
            batch = await http.post(
                "/v1/incidents:batch",
                content=lines,
                headers={"content-type": "application/x-ndjson"},
            )
            head = batch.json()["last_position"]
            standing = await http.get("/v1/countries/RU", params={"min_position": head})
            page = await http.get("/v1/events", params={"limit": 500})
        assert sorted(positions) == list(range(1, WRITES + 1))
        assert standing.status_code == 200, standing.text
        assert int(standing.headers["legation-position"]) == head == WRITES + 2
        assert [event["position"] for event in page.json()["items"]] == list(range(1, head + 1))
        # The sessions bypassed PgBouncer; the pool's work went through it, on its few
        # server connections.
        assert await holders(dsn) == ["legation-session"]
        assert await _fetchval(dsn, LISTENING) == 1
        assert await _fetchval(dsn, POOLED_BACKENDS) <= POOL_SIZE
        assert _transactions(bouncer) >= 2 * WRITES
    finally:
        await stop_all([server])
    assert "prepared statement" not in log.read_text(errors="replace")
