"""GET /v1/events/stream through a real server process (SSE needs a streaming transport)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from service.cli import GRACE_SECONDS
from tests.factories import expulsion
from tests.servers import serving, start


@pytest.fixture
def server(dsn: str, admin_key: str) -> Iterator[str]:
    KEYS[0] = admin_key
    with serving(dsn, sse_heartbeat_seconds="0.3") as base:
        yield base


class Frame(msgspec.Struct):
    id: int | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    frame = Frame()
    async for line in response.aiter_lines():
        if not line:
            yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comment = line[1:].strip()
        else:
            name, _, value = line.partition(": ")
            if name == "id":
                frame.id = int(value)
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data = msgspec.json.decode(value)


async def collect(
    url: str, events: int, within: float = 5.0, headers: dict[str, str] | None = None
) -> list[Frame]:
    """The first `events` event frames (comments dropped) of a stream."""
    got: list[Frame] = []
    async with (
        httpx.AsyncClient(timeout=within) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(within):
            async for frame in frames(response):
                if frame.id is not None:
                    got.append(frame)
                if len(got) == events:
                    break
    return got


KEYS = [""]  # the key the running server's database holds (set by the fixture)


def post(base: str, **changes: Any) -> int:
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    response = httpx.post(
        f"{base}/v1/incidents", json=expulsion(**changes), headers=headers, timeout=10
    )
    assert response.status_code == 201
    return int(response.headers["legation-position"])


async def test_catch_up_resume_filters_and_cors(server: str) -> None:
    for expelled in ("NL", "BE", "DE"):
        post(server, expelled=expelled)
    caught_up = await collect(f"{server}/v1/events/stream", 3)
    assert [(f.id, f.event) for f in caught_up] == [
        (1, "expulsion.reported"),
        (2, "expulsion.reported"),
        (3, "expulsion.reported"),
    ]
    assert caught_up[1].data["data"]["expelled"] == "BE"
    assert caught_up[1].data["position"] == 2
    assert caught_up[1].data["dataschema"] == "/v1/schemas/expulsion.reported?version=2"
    resumed = await collect(f"{server}/v1/events/stream", 1, headers={"Last-Event-ID": "2"})
    assert [f.id for f in resumed] == [3]
    garbled = await collect(f"{server}/v1/events/stream", 1, headers={"Last-Event-ID": "x1"})
    assert [f.id for f in garbled] == [1]
    after = await collect(f"{server}/v1/events/stream?after=1", 1)
    assert [f.id for f in after] == [2]
    belgium = await collect(f"{server}/v1/events/stream?country=bel", 1)
    assert [f.data["data"]["expelled"] for f in belgium] == ["BE"]
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get("/v1/events?limit=1", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        bad = await client.get("/v1/events/stream?type=nothing.happened")
        assert bad.status_code == 422


async def test_live_follow_and_heartbeats(server: str) -> None:
    head = post(server)
    got: list[Frame] = []
    comments: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{server}/v1/events/stream?after={head}&type=expulsion.reported"
        async with client.stream("GET", url) as response:
            async with asyncio.timeout(10):
                posted = False
                async for frame in frames(response):
                    if frame.comment:
                        comments.append(frame.comment)
                    if frame.id is not None:
                        got.append(frame)
                        break
                    if comments.count("heartbeat") >= 2 and not posted:
                        sent = time.monotonic()
                        await asyncio.to_thread(post, server, expelled="PL")
                        posted = True
            received = time.monotonic()
    assert comments.count("heartbeat") >= 2
    assert [f.id for f in got] == [head + 1]
    assert got[0].data["data"]["expelled"] == "PL"
    assert received - sent < 1.0


async def test_the_stream_goes_on_after_its_listen_connection_is_killed(
    server: str, dsn: str
) -> None:
    head = post(server)
    conn = await asyncpg.connect(dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    finally:
        await conn.close()
    assert killed >= 1
    received: list[int] = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{server}/v1/events/stream?after={head}") as response,
    ):
        await asyncio.to_thread(post, server, expelled="BE")
        async with asyncio.timeout(5):
            async for frame in frames(response):
                if frame.id is not None:
                    received.append(frame.id)
                    break
    assert received == [head + 1]


async def _open_raw_stream(base: str, after: int, receive_buffer: int | None = None) -> Any:
    """A stream read through a bare socket, so the test decides when (and if) it reads."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
    writer.write(f"GET /v1/events/stream?after={after} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert b" 200 " in await reader.readline()
    return reader, writer


async def _positions(reader: asyncio.StreamReader, last: int) -> list[int]:
    seen: list[int] = []
    while not seen or seen[-1] < last:
        line = await reader.readline()
        assert line, f"the stream ended after {seen[-3:]}"
        if line.startswith(b"id: "):
            seen.append(int(line[4:]))
    return seen


async def test_a_client_that_stops_reading_holds_up_no_one_and_misses_nothing(
    server: str,
) -> None:
    head = post(server)
    fast, fast_writer = await _open_raw_stream(server, head)
    slow, slow_writer = await _open_raw_stream(server, head, receive_buffer=2048)
    # About 40 KB an event: a few hundred fill every socket buffer of the stalled client.
    bulky = {
        "summary": "s" * 3_900,
        "sources": [{"outlet": "AFP", "url": "https://example.org/" + "u" * 2_000}] * 18,
    }
    last = head + 300  # nothing else writes to this test's database
    reading = asyncio.create_task(_positions(fast, last))
    for _ in range(300):
        await asyncio.to_thread(post, server, **bulky)
    async with asyncio.timeout(30):
        # The reading client got every event while the other one read nothing ...
        assert await reading == list(range(head + 1, last + 1))
        # ... which, reading at last, gets them all too, in order, once each.
        assert await _positions(slow, last) == list(range(head + 1, last + 1))
    for writer in (fast_writer, slow_writer):
        writer.close()


async def test_sigterm_closes_open_streams_after_the_grace_period(dsn: str, admin_key: str) -> None:
    base, process = start(dsn, {})
    _, writer = await _open_raw_stream(base, 0)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, GRACE_SECONDS + 10) == 0
    assert time.monotonic() - started < GRACE_SECONDS + 10
    writer.close()
