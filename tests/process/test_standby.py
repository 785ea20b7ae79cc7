"""Two boxes on real machinery: a primary-backed server and a read-only one on its hot standby.

The primary and its streaming standby are made here (initdb, pg_basebackup -R,
pg_ctl start) on loopback, once for the module; a replay paused on the standby
stands in for a standby that has not caught up.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.log.migrations import migrate
from service.projections.projector import PROJECTOR_LOCK
from tests.clusters import Cluster, postgres_bin, primary_and_standby
from tests.conftest import make_key
from tests.factories import expulsion
from tests.process.test_replicas import eventually, stop_all
from tests.process.test_sse import collect
from tests.servers import start

BIN = postgres_bin()
# Under CI (.ci/run installs them) a missing program fails these tests, never skips them.
pytestmark = pytest.mark.skipif(
    BIN is None and not os.environ.get("CI"),
    reason="no PostgreSQL server programs with pg_basebackup (initdb, pg_ctl) found under "
    "/usr/lib/postgresql/*/bin, PATH or PG_BINDIR; install postgresql and postgresql-client",
)
WAIT_SECONDS = 2.0  # the standby-backed server's LEGATION_READ_WAIT_SECONDS
# What a read-only server must never log: a write, a LISTEN or a lock tried on the standby.
NEVER_LOGGED = ("read-only transaction", "doorbell connection lost", "projector", "migrat")


@dataclass
class Deployment:
    """The two clusters, a server on each, and clients of both."""

    primary: Cluster
    standby: Cluster
    primary_url: str
    writer: httpx.AsyncClient  # on the primary-backed server
    reader: httpx.AsyncClient  # on the standby-backed server
    reader_log: Path

    async def on_standby(self, sql: str) -> Any:
        conn = await asyncpg.connect(self.standby.dsn("legation"))
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def write(self, **changes: Any) -> tuple[str, int]:
        response = await self.writer.post("/v1/incidents", json=expulsion(**changes))
        assert response.status_code == 201, response.text
        return response.json()["id"], int(response.headers["legation-position"])

    async def replayed_head(self) -> int:
        return int((await self.reader.get("/ready")).json()["log_head"])


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    assert BIN is not None
    with primary_and_standby(BIN) as pair:
        yield pair


async def _create_database(cluster: Cluster) -> str:
    conn = await asyncpg.connect(cluster.dsn())
    try:
        await conn.execute("CREATE DATABASE legation")
    finally:
        await conn.close()
    dsn = cluster.dsn("legation")
    await asyncio.to_thread(migrate, dsn)
    return dsn


@pytest.fixture(scope="module")
async def deployment(
    clusters: tuple[Cluster, Cluster], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    primary, standby = clusters
    key = await make_key(await _create_database(primary))
    log = tmp_path_factory.mktemp("standby") / "reader.log"
    writer_base, writer = await asyncio.to_thread(
        start, primary.dsn("legation"), {"rate_limit": "0"}
    )
    reading = {
        "rate_limit": "0",
        "read_only": "true",
        "primary_url": writer_base,
        "read_wait_seconds": str(WAIT_SECONDS),
    }
    try:
        # /ready answers once the standby has replayed the migrations.
        reader_base, reader = await asyncio.to_thread(
            start, standby.dsn("legation"), reading, stderr=log
        )
    except BaseException:
        await stop_all([writer])
        raise
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with (
            httpx.AsyncClient(base_url=writer_base, headers=headers, timeout=20) as writes,
            httpx.AsyncClient(base_url=reader_base, headers=headers, timeout=20) as reads,
        ):
            yield Deployment(primary, standby, writer_base, writes, reads, log)
    finally:
        await stop_all([writer, reader])


async def _pause_replay(deployment: Deployment) -> None:
    await deployment.on_standby("SELECT pg_wal_replay_pause()")

    async def paused() -> bool | None:
        state = await deployment.on_standby("SELECT pg_get_wal_replay_pause_state()")
        return True if state == "paused" else None

    await eventually(paused)


async def test_reads_its_own_write_through_the_standby(deployment: Deployment) -> None:
    await _pause_replay(deployment)
    try:
        incident, position = await deployment.write()
        url = f"/v1/incidents/{incident}"
        # Not replayed in the whole wait: 503 (not 422 for a position past the
        # standby's head, not a 404 for an incident it has not seen).
        late = await deployment.reader.get(url, params={"min_position": position})
        assert late.status_code == 503, late.text
        assert late.headers["retry-after"] == "1"
        ready = (await deployment.reader.get("/ready")).json()
        assert ready["replay_lag_seconds"] > 0
        waiting = asyncio.create_task(deployment.reader.get(url, params={"min_position": position}))
        await asyncio.sleep(0.5)
        assert not waiting.done()
    finally:
        await deployment.on_standby("SELECT pg_wal_replay_resume()")
    read = await waiting
    assert read.status_code == 200, read.text
    assert read.json()["id"] == incident
    assert int(read.headers["legation-position"]) >= position
    standing = "/v1/countries/RU"
    on_primary = await deployment.writer.get(standing, params={"min_position": position})
    on_standby = await deployment.reader.get(standing, params={"min_position": position})
    assert on_standby.status_code == 200, on_standby.text
    assert on_standby.json() == on_primary.json()
    assert "replay_lag_seconds" not in (await deployment.writer.get("/ready")).json()


def _reports(count: int) -> bytes:
    lines = (expulsion(expelled=("NL", "BE", "DE", "FR")[i % 4], count=i + 1) for i in range(count))
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def _page_all(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await client.get("/v1/events", params={"after": after, "limit": 100})
        assert page.status_code == 200, page.text
        got = page.json()["items"]
        if not got:
            return items
        items += got
        after = got[-1]["position"]


async def test_pages_the_whole_log_from_the_standby(deployment: Deployment) -> None:
    batch = await deployment.writer.post(
        "/v1/incidents:batch",
        content=_reports(250),
        headers={"content-type": "application/x-ndjson"},
    )
    assert batch.status_code == 201, batch.text
    head = batch.json()["last_position"]
    # The first page waits for the standby to replay the batch.
    first = await deployment.reader.get("/v1/events", params={"min_position": head, "limit": 1})
    assert first.json()["last_position"] >= head, first.text
    from_standby = await _page_all(deployment.reader)
    assert [item["position"] for item in from_standby] == list(range(1, head + 1))
    assert from_standby == await _page_all(deployment.writer)


async def test_follows_the_log_over_sse_from_the_standby(deployment: Deployment) -> None:
    head = await _primary_head(deployment)

    async def replayed() -> bool | None:
        return True if await deployment.replayed_head() >= head else None

    await eventually(replayed)
    url = f"{deployment.reader.base_url}/v1/events/stream"
    # Two events to catch up on, then two that are written while the stream follows.
    following = asyncio.create_task(
        collect(url, 4, within=10, headers={"Last-Event-ID": str(head - 2)})
    )
    await asyncio.sleep(0.5)
    written = [(await deployment.write(expelled=code))[1] for code in ("EE", "LV")]
    frames = await following
    assert [frame.id for frame in frames] == [head - 1, head, *written]
    assert frames[-1].data["data"]["expelled"] == "LV"


async def _primary_head(deployment: Deployment) -> int:
    return int((await deployment.writer.get("/ready")).json()["log_head"])


async def test_refuses_writes_naming_the_primary(deployment: Deployment) -> None:
    refused = await deployment.reader.post("/v1/incidents", json=expulsion())
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:legation:problem:read-only"
    assert deployment.primary_url in problem["detail"]
    assert refused.headers["link"] == f'<{deployment.primary_url}/v1/incidents>; rel="alternate"'
    subscription = {"url": "https://example.org/hook"}
    for method, path, body in (
        ("POST", "/v1/subscriptions", subscription),
        ("DELETE", f"/v1/subscriptions/{uuid.uuid4()}", None),
    ):
        answer = await deployment.reader.request(method, path, json=body)
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == "urn:legation:problem:read-only"


async def test_runs_no_writer_on_the_standby(deployment: Deployment) -> None:
    # The projector would win its advisory lock on the standby (locks are per server).
    held = await deployment.on_standby(
        f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        f" AND classid = {PROJECTOR_LOCK[0]} AND objid = {PROJECTOR_LOCK[1]}"
    )
    assert held == 0
    logged = deployment.reader_log.read_text(errors="replace")
    assert "read-only" in logged  # the log is the server's: it says so on start
    for line in logged.splitlines():
        assert not any(word in line for word in NEVER_LOGGED), line
