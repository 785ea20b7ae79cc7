"""Crash safety: real `legation serve` processes on a real PostgreSQL, killed under load.

Eight writers report expulsions, each under an Idempotency-Key of its own, and retry whatever
went unanswered with the same key and body. Whatever is killed (the server, its database
connections, PostgreSQL itself, the projector mid-batch), the log must afterwards hold every
acknowledged incident and exactly one incident per key, and the standings must count each once.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from service.http.headers import POSITION
from service.incidents.domain import keyed_event_id
from service.log.migrations import migrate
from service.ops.embedded import EmbeddedPostgres
from service.projections.projector import BATCH_SIZE
from tests.conftest import make_key
from tests.factories import expulsion
from tests.servers import Server, start, stop

WRITERS = 8
ACTOR = "crash-writers"  # the API key's name, from which keyed event ids derive
SETTINGS = {"rate_limit": "0"}  # eight writers on one key would otherwise be throttled
# Retry-After says 1 s; writers come back sooner so an outage costs the test little time.
RETRY_PAUSE = 0.05
# The log's ordering lock, taken by every append (migrations/versions/0001_event_log.py).
ORDERING_LOCK = (1818585454, 1)
TERMINATE = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()"""
APPENDS_WAITING = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
CHECKPOINT_WAITING = """
SELECT count(*) FROM pg_locks
 WHERE relation = 'projection_checkpoints'::regclass AND mode = 'RowExclusiveLock'
   AND NOT granted"""
READ_MODELS = """
SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_versions),
       (SELECT position FROM projection_checkpoints WHERE name = 'read_models')"""

Report = dict[str, Any]


def report(writer: int, n: int) -> tuple[str, Report]:
    """The key and body a writer sends (and re-sends) as its n-th report."""
    return f"crash-{writer}-{n}", expulsion(count=1 + (writer + n) % 9)


@dataclass(frozen=True)
class Ack:
    """A 201: the incident, and the log position the server said holds it."""

    incident: str
    position: int


@dataclass
class Ledger:
    """What the writers sent and what they were told."""

    sent: dict[str, Report] = field(default_factory=dict)
    acknowledged: dict[str, Ack] = field(default_factory=dict)
    refusals: list[tuple[int, str | None]] = field(default_factory=list)  # status, Retry-After
    unanswered: int = 0  # attempts that got no status at all

    def record(self, key: str, body: Report, answer: httpx.Response | None) -> bool:
        """Note one attempt; whether it was acknowledged."""
        self.sent[key] = body
        if answer is None:
            self.unanswered += 1
            return False
        if answer.status_code == 201:
            self.acknowledged[key] = Ack(answer.json()["id"], int(answer.headers[POSITION]))
            return True
        self.refusals.append((answer.status_code, answer.headers.get("retry-after")))
        return False

    def expelled(self) -> int:
        """The diplomats the reports expel, each key counted once."""
        return sum(body["count"] for body in self.sent.values())


async def send(client: httpx.AsyncClient, key: str, body: Report) -> httpx.Response | None:
    try:
        return await client.post("/v1/incidents", json=body, headers={"Idempotency-Key": key})
    except httpx.TransportError:
        return None


async def write_until_unanswered(client: httpx.AsyncClient, writer: int, ledger: Ledger) -> None:
    for n in itertools.count():
        key, body = report(writer, n)
        if not ledger.record(key, body, await send(client, key, body)):
            return


async def write_through(client: httpx.AsyncClient, writer: int, each: int, ledger: Ledger) -> None:
    """Send `each` reports, retrying each with its key until it is acknowledged."""
    for n in range(each):
        key, body = report(writer, n)
        while True:
            if ledger.record(key, body, await send(client, key, body)):
                break
            await asyncio.sleep(RETRY_PAUSE)


async def until(check: Callable[[], bool | Awaitable[bool]], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while True:
            done = check()
            if await done if inspect.isawaitable(done) else done:
                return
            await asyncio.sleep(0.01)


def writer_client(base: str, api_key: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=30)


@asynccontextmanager
async def running(dsn: str) -> AsyncIterator[tuple[str, Server]]:
    """`legation serve` on `dsn`; stopped (or reaped, if the test killed it) afterwards."""
    base, server = await asyncio.to_thread(start, dsn, SETTINGS)
    try:
        yield base, server
    finally:
        await asyncio.to_thread(stop, server)


@asynccontextmanager
async def writing(base: str, api_key: str, each: int) -> AsyncIterator[Ledger]:
    """Writers retrying through whatever the block does; it ends when all are acknowledged."""
    ledger = Ledger()
    async with writer_client(base, api_key) as client:
        writers = [write_through(client, w, each, ledger) for w in range(WRITERS)]
        done = asyncio.ensure_future(asyncio.gather(*writers))
        try:
            yield ledger
            async with asyncio.timeout(20):
                await done
        finally:
            done.cancel()


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def assert_one_incident_per_key(dsn: str, ledger: Ledger) -> int:
    """One event per key, with the id the key derives, where its 201 said; the log head."""
    rows = await fetch(
        dsn, "SELECT position, id, stream, metadata->>'idempotency_key' AS key FROM events"
    )
    assert Counter(row["key"] for row in rows) == Counter(ledger.sent.keys())
    logged = {row["key"]: row for row in rows}
    for key, row in logged.items():
        assert row["id"] == keyed_event_id(ACTOR, key), key
        assert row["stream"] == f"incident-{row['id']}", key
    for key, ack in ledger.acknowledged.items():
        assert (str(logged[key]["id"]), logged[key]["position"]) == (ack.incident, ack.position)
    return int(max(row["position"] for row in rows))


async def assert_standings_count_each_once(base: str, head: int, ledger: Ledger) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        wait = {"min_position": head}
        russia = await client.get("/v1/countries/RU", params=wait)
        netherlands = await client.get("/v1/countries/NL", params=wait)
    assert (russia.status_code, netherlands.status_code) == (200, 200)
    expelling, expelled = russia.json()["expulsions"], netherlands.json()["expulsions"]
    assert expelling["expelled_foreign_diplomats"] == ledger.expelled()
    assert expelling["incidents_initiated"] == len(ledger.sent)
    assert expelled["own_diplomats_expelled"] == ledger.expelled()


def assert_only_retryable_refusals(ledger: Ledger) -> None:
    """The server kept answering, and never with a 500: only 503 with Retry-After."""
    assert ledger.refusals, "no write was refused: the outage hit nothing in flight"
    assert [refusal for refusal in ledger.refusals if refusal[0] != 503 or not refusal[1]] == []
    assert ledger.unanswered == 0


# -- the server killed ------------------------------------------------------------------


async def sigkill_under_load(base: str, server: Server, api_key: str) -> Ledger:
    """Writers each writing until one of their requests goes unanswered; killed meanwhile."""
    ledger = Ledger()
    async with writer_client(base, api_key) as client:
        done = asyncio.gather(*(write_until_unanswered(client, w, ledger) for w in range(WRITERS)))
        await until(lambda: len(ledger.acknowledged) >= 100)
        server.kill()
        async with asyncio.timeout(20):
            await done
    return ledger


async def assert_in_the_log(base: str, acknowledged: dict[str, Ack]) -> None:
    """Each acknowledged report is in GET /v1/events where its 201 said."""
    events: dict[int, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while True:
            after = max(events, default=0)
            page = await client.get("/v1/events", params={"after": after, "limit": 500})
            if not page.json()["items"]:
                break
            events |= {event["position"]: event for event in page.json()["items"]}
    for key, ack in acknowledged.items():
        logged = events[ack.position]
        assert logged["stream"] == f"incident-{ack.incident}", key
        assert logged["metadata"]["idempotency_key"] == key


async def test_sigkill_loses_no_acknowledged_write_and_retries_record_once(dsn: str) -> None:
    api_key = await make_key(dsn, ("write",), name=ACTOR)
    async with running(dsn) as (base, server):
        ledger = await sigkill_under_load(base, server, api_key)
    assert ledger.refusals == []
    async with running(dsn) as (base, _):
        # Before any retry, which could otherwise stand in for a lost write.
        await assert_in_the_log(base, ledger.acknowledged)
        async with writer_client(base, api_key) as client:
            for key in ledger.sent.keys() - ledger.acknowledged.keys():
                body = ledger.sent[key]
                assert ledger.record(key, body, await send(client, key, body)), key
        head = await assert_one_incident_per_key(dsn, ledger)
        await assert_standings_count_each_once(base, head, ledger)


# -- the database connections killed ----------------------------------------------------


async def cut_connections(dsn: str) -> int:
    """Terminate every connection to the database but this one; how many there were."""
    return int((await fetch(dsn, TERMINATE))[0][0])


async def cut_appends_in_flight(dsn: str, ledger: Ledger) -> None:
    """Hold appends mid-query behind the log's ordering lock and cut every connection
    until one of them has been answered."""
    conn = await asyncpg.connect(dsn)
    refused = len(ledger.refusals)
    try:
        async with asyncio.timeout(20), conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *ORDERING_LOCK)
            # A group of appends that fails is retried one by one, so it may take
            # a cut per request in the group before one of them is answered.
            while len(ledger.refusals) == refused:
                if await conn.fetchval(APPENDS_WAITING, *ORDERING_LOCK):
                    # pg_stat_activity is read once per transaction unless cleared.
                    await conn.execute("SELECT pg_stat_clear_snapshot()")
                    await conn.execute(TERMINATE)
                await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def test_cut_database_connections_answer_503_and_the_pool_recovers(dsn: str) -> None:
    api_key = await make_key(dsn, ("write",), name=ACTOR)
    async with running(dsn) as (base, server):
        async with writing(base, api_key, each=30) as ledger:
            await until(lambda: len(ledger.acknowledged) >= 50)
            assert await cut_connections(dsn) > 0
            await until(lambda: len(ledger.acknowledged) >= 110)
            await cut_appends_in_flight(dsn, ledger)
            await until(lambda: len(ledger.acknowledged) >= 170)
            assert await cut_connections(dsn) > 0
        # Every write went through after the cuts, and this same process still serves.
        assert server.poll() is None
        head = await assert_one_incident_per_key(dsn, ledger)
        await assert_standings_count_each_once(base, head, ledger)
    assert_only_retryable_refusals(ledger)


# -- PostgreSQL restarted ---------------------------------------------------------------


@pytest.fixture
def cluster(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL of the test's own, as `legation serve` runs without DATABASE_URL."""
    server = EmbeddedPostgres(data_dir)
    migrate(server.start())
    yield server
    server.stop()


def running_process(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a postmaster is not ours to reap


async def stop_immediately(cluster: EmbeddedPostgres) -> None:
    """SIGQUIT, as `pg_ctl stop -m immediate`: no shutdown checkpoint; recovery on start."""
    postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(postmaster, signal.SIGQUIT)
    await until(lambda: not running_process(postmaster))
    await asyncio.to_thread(cluster.stop)  # the server is gone: this only forgets our use of it


async def start_once_refused(cluster: EmbeddedPostgres, dsn: str, ledger: Ledger) -> None:
    """Start the stopped cluster again, once a write has been refused meanwhile."""
    refused = len(ledger.refusals)
    await until(lambda: len(ledger.refusals) > refused)
    # The socket's name holds the port, in a folder of the cluster's own: nothing else
    # can have taken it, so the server comes back where the pool looks for it.
    assert await asyncio.to_thread(cluster.start) == dsn


async def test_a_postgresql_restart_under_load_answers_503_and_loses_nothing(
    cluster: EmbeddedPostgres,
) -> None:
    dsn = cluster.start()  # already running: its DSN
    api_key = await make_key(dsn, ("write",), name=ACTOR)
    async with running(dsn) as (base, server):
        async with writing(base, api_key, each=30) as ledger:
            await until(lambda: len(ledger.acknowledged) >= 60)
            await asyncio.to_thread(cluster.stop)  # pg_ctl stop -m fast
            await start_once_refused(cluster, dsn, ledger)
            await until(lambda: len(ledger.acknowledged) >= 150)
            await stop_immediately(cluster)
            await start_once_refused(cluster, dsn, ledger)
        assert server.poll() is None
        head = await assert_one_incident_per_key(dsn, ledger)
        await assert_standings_count_each_once(base, head, ledger)
    assert_only_retryable_refusals(ledger)


# -- the projector killed mid-batch -----------------------------------------------------
# tests/db/test_projector.py raises inside project_batch in-process; this kills the process,
# so that PostgreSQL, not the client, must roll the batch back, the dead process's
# projector lock must pass to the next one, and the restart must resume from the checkpoint.

BACKLOG = BATCH_SIZE + BATCH_SIZE // 5  # the first batch is halted, then two more


async def post_batch(base: str, api_key: str, reports: list[Report]) -> int:
    """POST /v1/incidents:batch; the log position of its last incident."""
    body = b"\n".join(msgspec.json.encode(report) for report in reports)
    async with writer_client(base, api_key) as client:
        answer = await client.post(
            "/v1/incidents:batch", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["last_position"])


async def kill_the_projector_mid_batch(dsn: str, api_key: str, reports: list[Report]) -> int:
    """Append a backlog, SIGKILL the server while its first batch is written but not
    committed; the log head."""
    blocker = await asyncpg.connect(dsn)
    try:
        async with blocker.transaction():
            # SHARE lets the projector lock its checkpoint row and write both read
            # models, but not move the checkpoint: the batch halts at its last statement.
            await blocker.execute("LOCK TABLE projection_checkpoints IN SHARE MODE")
            async with running(dsn) as (base, server):
                head = await post_batch(base, api_key, reports)
                await until(lambda: blocker.fetchval(CHECKPOINT_WAITING))
                server.kill()
    finally:
        await blocker.close()
    return head


async def test_a_projector_killed_mid_batch_counts_each_incident_once(dsn: str) -> None:
    api_key = await make_key(dsn, ("write",), name=ACTOR)
    ledger = Ledger(sent={f"line-{n}": expulsion(count=1 + n % 9) for n in range(BACKLOG)})
    head = await kill_the_projector_mid_batch(dsn, api_key, list(ledger.sent.values()))
    async with running(dsn) as (base, _):
        await assert_standings_count_each_once(base, head, ledger)
    counts = await fetch(dsn, READ_MODELS)
    assert tuple(counts[0]) == (BACKLOG, BACKLOG, head)
