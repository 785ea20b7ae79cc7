"""Event-stream clients through a real `legation serve`: capped, paged, and dropped when stalled.

The clients are bare sockets with a small receive buffer that read their response head
and then nothing, as a careless or hostile client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.log.database import connect
from service.log.store import append, head_position
from tests.factories import event, stream
from tests.process.test_replicas import eventually
from tests.process.test_sse import collect
from tests.servers import LEGATION, Server, free_port, start, stop, wait_until_serving

RECEIVE_BUFFER = 4096


class Opened(msgspec.Struct):
    """A stream request's answer head, what came along with it, and its socket."""

    status: int
    headers: dict[str, str]
    sock: socket.socket
    body: bytes


async def open_stream(base: str, query: str = "after=0", **headers: str) -> Opened:
    """GET the stream on a bare socket; read the answer's head (and a refusal's body)."""
    loop = asyncio.get_running_loop()
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    lines = [f"GET /v1/events/stream?{query} HTTP/1.1", "Host: x"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1024)
        assert chunk, f"closed before the head: {head!r}"
        head += chunk
    head, body = head.split(b"\r\n\r\n", 1)
    status_line, *fields = head.decode().split("\r\n")
    parsed = {name.lower(): value for name, value in (field.split(": ", 1) for field in fields)}
    return Opened(int(status_line.split()[1]), parsed, sock, body)


@asynccontextmanager
async def silent_clients(
    base: str, count: int, query: str = "after=0"
) -> AsyncIterator[list[Opened]]:
    """`count` streams that were let in and then read nothing, closed on the way out."""
    clients: list[Opened] = []
    try:
        for _ in range(count):
            clients.append(await open_stream(base, query))
            assert clients[-1].status == 200, clients[-1].headers
        yield clients
    finally:
        for client in clients:
            client.sock.close()


async def problem_body(opened: Opened) -> Any:
    loop = asyncio.get_running_loop()
    body = opened.body
    while len(body) < int(opened.headers["content-length"]):
        chunk = await loop.sock_recv(opened.sock, 4096)
        assert chunk
        body += chunk
    opened.sock.close()
    return msgspec.json.decode(body)


@contextlib.contextmanager
def server(dsn: str, **settings: str) -> Iterator[tuple[str, Server]]:
    # The bulky test events are no incidents: nothing here projects them.
    base, process = start(dsn, {"rate_limit": "0", "projector": "separate"} | settings)
    try:
        yield base, process
    finally:
        stop(process)


async def bulky_log(dsn: str, events: int, size: int) -> int:
    """Append `events` events of about `size` bytes each; the log's head."""
    conn = await connect(dsn)
    try:
        for first in range(0, events, 100):
            batch = [event(n, {"n": n, "blob": "b" * size}) for n in range(first, first + 100)]
            await append(conn, stream(), 0, batch[: events - first])
        return await head_position(conn)
    finally:
        await conn.close()


def resident_mb(process: Server) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_streams_past_the_caps_are_refused_with_retry_after(dsn: str) -> None:
    # Behind a trusted proxy, the forwarded address is the one counted, as for rate limits.
    caps = {"max_streams": "3", "max_streams_per_address": "2", "trusted_proxies": "127.0.0.1"}
    with server(dsn, **caps) as (base, _):
        a1 = await open_stream(base, X_Forwarded_For="198.51.100.1")
        a2 = await open_stream(base, X_Forwarded_For="198.51.100.1")
        a3 = await open_stream(base, X_Forwarded_For="198.51.100.1")
        b1 = await open_stream(base, X_Forwarded_For="198.51.100.2")
        c1 = await open_stream(base, X_Forwarded_For="198.51.100.3")
        assert [a1.status, a2.status, a3.status, b1.status, c1.status] == [200, 200, 429, 200, 503]
        for refused in (a3, c1):
            assert int(refused.headers["retry-after"]) > 0
            assert refused.headers["content-type"] == "application/problem+json"
            assert (await problem_body(refused))["status"] == refused.status
        a1.sock.close()  # a stream that ends gives its slot back

        async def admitted() -> bool | None:
            again = await open_stream(base, X_Forwarded_For="198.51.100.3")
            again.sock.close()
            return True if again.status == 200 else None

        await eventually(admitted)  # once the server has seen the client leave
        for client in (a2, b1):
            client.sock.close()


async def test_silent_clients_from_the_start_of_a_long_log_hold_little_memory(dsn: str) -> None:
    await bulky_log(dsn, 3000, 3000)  # about 10 MB of messages
    with server(dsn, max_streams_per_address="1000", stream_stall_seconds="600") as (base, web):
        await collect(f"{base}/v1/events/stream?after=2990", 10)  # warm: one stream served
        before = resident_mb(web)
        async with silent_clients(base, 100):
            peak = before
            for _ in range(20):  # until each has been sent what its buffers take, and more
                await asyncio.sleep(0.25)
                peak = max(peak, resident_mb(web))
    assert peak - before < 200, f"{before:.0f} MB -> {peak:.0f} MB"


async def test_a_stalled_client_is_dropped_and_resumes_with_last_event_id(dsn: str) -> None:
    head = await bulky_log(dsn, 2500, 4000)  # more than the socket buffers of a client take
    with server(dsn, stream_stall_seconds="2") as (base, _):
        async with silent_clients(base, 10) as stalled, httpx.AsyncClient(base_url=base) as http:
            for _ in range(5):  # others are answered meanwhile
                started = time.monotonic()
                assert (await http.get("/v1/events", params={"limit": 1})).status_code == 200
                assert time.monotonic() - started < 1.0
                await asyncio.sleep(0.2)

            async def dropped() -> bool | None:
                metrics = (await http.get("/metrics")).text.splitlines()
                return True if "legation_sse_clients 0" in metrics else None

            await eventually(dropped, within=20)  # the stall time, and a generous margin
            received = await drain(stalled[0].sock)
        last = received[-1]
        assert last < head  # it was dropped before it had read everything ...
        rest = await collect(
            f"{base}/v1/events/stream", head - last, within=30, headers={"Last-Event-ID": str(last)}
        )
        assert [frame.id for frame in rest] == list(range(last + 1, head + 1))  # ... and resumes


async def drain(sock: socket.socket) -> list[int]:
    """Read a dropped stream to its end; the ids of the whole messages it got."""
    loop = asyncio.get_running_loop()
    data = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(10):
            while chunk := await loop.sock_recv(sock, 1 << 16):
                data += chunk
    whole = data.rsplit(b"\n\n", 1)[0].split(b"\n")
    return [int(line.removeprefix(b"id: ")) for line in whole if line.startswith(b"id: ")]


def test_the_server_raises_its_open_file_limit_for_the_sockets_of_its_streams(dsn: str) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)

    def lowered() -> None:  # as a system that starts processes at a low soft limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    port = free_port()
    env = os.environ | {"DATABASE_URL": dsn, "LEGATION_PORT": str(port)}
    server = subprocess.Popen(
        [str(LEGATION), "serve"], env=env, stderr=subprocess.DEVNULL, preexec_fn=lowered
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", server)
        limits = Path(f"/proc/{server.pid}/limits").read_text().splitlines()
        (files,) = [line.split() for line in limits if line.startswith("Max open files")]
        assert files[3:5] == [str(hard), str(hard)]  # soft, hard
    finally:
        stop(server)
