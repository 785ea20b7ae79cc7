"""Live fan-out: append-to-receipt latency over GET /v1/events/stream at many SSE clients.

A real `legation serve` on a scratch database (its stream caps lifted); N SSE clients as
asyncio protocols in this uvloop process (one connection each, `?after=<head>`); then M
POST /v1/incidents, one every ~20 ms on a separate connection. Latency is each client's
receive time of an event's `id:` line minus the time just before its POST was sent, so it
includes the POST round trip. Every client must receive every position, in order. CPU
seconds of the server and of the clients are reported per delivery. (Webhooks:
bench/webhooks.py.)
Run: python -m bench.subscribe [--quick] [--clients N] [--appends M]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import uvloop

from bench.common import (
    AUTH,
    Row,
    free_port,
    merge_results,
    percentile,
    print_table,
    scratch_database,
)
from bench.reports import INCIDENT

DEFAULT_CLIENTS, QUICK_CLIENTS = 5_000, 500
DEFAULT_APPENDS, QUICK_APPENDS = 200, 50
INTERVAL_S = 0.020
CONNECTING = 100  # clients opening at once
SETUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 15.0
P99_TARGET_MS = 100.0
RSS_TARGET_MB = 300.0
HOST = "127.0.0.1"


def _raise_nofile() -> None:
    """Soft open-file limit up to the hard one (1,000 sockets need more than 1,024)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- Server -----------------------------------------------------------------------------


def _ready(url: str) -> int | None:
    """The log head /ready reports, or None while it is not ready."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status != 200:
                return None
            head: int = json.loads(response.read()).get("log_head", 0)
            return head
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


def _auth_lines() -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in AUTH.items())


@contextmanager
def legation(dsn: str, log: Path, settings: dict[str, str] | None = None) -> Iterator[Server]:
    """`legation serve` on a free port with a raised open-file limit and these `settings`
    (environment variables) too; SIGTERMed on exit."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "legation"), "serve", "--port", str(port)]
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "LEGATION_RATE_LIMIT": "0",
        # Every client of the bench comes from this one address, and there may be more
        # than the caps let in by default.
        "LEGATION_MAX_STREAMS": "100000",
        "LEGATION_MAX_STREAMS_PER_ADDRESS": "100000",
        **(settings or {}),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_raise_nofile
        )
    try:
        deadline = time.monotonic() + 60
        while _ready(f"http://{HOST}:{port}/ready") is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"server not ready (exit {proc.returncode}):\n{tail}")
            time.sleep(0.1)
        yield Server(proc.pid, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- Clients ----------------------------------------------------------------------------

ID_LINE = b"\nid: "  # an event's first line; chunk-size lines end in \r\n, so \n precedes it


class Client(asyncio.Protocol):
    """One SSE connection: the positions it received, in order, and when each arrived.

    A protocol, not a stream reader: thousands of clients share this process's core
    with the server's, so a receipt costs one callback and a find(), not a task wake-up.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.positions: list[int] = []
        self.times: list[float] = []
        self.want: int | None = None  # the last appended position, once every append is made
        self.caught_up = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self.failure: str | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.connected.is_set():
            self._opening(data)
            return
        self._scan(self._tail + data, time.monotonic())

    def _opening(self, data: bytes) -> None:
        head = self._tail + data
        if not head.startswith(b"HTTP/1.1 200 "):
            if len(head) >= 13:
                self._fail(f"stream answered {head[:300]!r}")
            else:
                self._tail = head
            return
        mark = head.find(b": connected\n")
        if mark < 0:
            self._tail = head
            return
        self._tail = b""
        self.connected.set()
        self._scan(head[mark:], time.monotonic())

    def _scan(self, data: bytes, now: float) -> None:
        # Every `id:` line in the data; a line cut at the end waits for the next data.
        positions, times = self.positions, self.times
        at = data.find(ID_LINE)
        while at >= 0:
            end = data.find(b"\n", at + 5)
            if end < 0:
                self._tail = data[at:]
                break
            positions.append(int(data[at + 5 : end]))
            times.append(now)
            at = data.find(ID_LINE, end)
        else:
            self._tail = data[-4:]  # shorter than ID_LINE: nothing is counted twice
        if self.want is not None and positions and positions[-1] >= self.want:
            self.caught_up.set()

    def _fail(self, failure: str) -> None:
        self.failure = failure
        self.connected.set()  # whoever waits for it sees the failure
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.is_set():
            self._fail(f"stream closed before `: connected` ({exc})")
        self.closed.set()
        self.caught_up.set()  # nothing more arrives: its misses are counted


async def _open(client: Client, port: int, gate: asyncio.Semaphore) -> None:
    loop = asyncio.get_running_loop()
    async with gate:
        await loop.create_connection(lambda: client, HOST, port)
        await client.connected.wait()
    if client.failure is not None:
        raise RuntimeError(client.failure)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> int:
    """One POST /v1/incidents on a keep-alive connection; the Legation-Position it returns."""
    writer.write(
        f"POST /v1/incidents HTTP/1.1\r\nHost: {HOST}:{port}\r\n{_auth_lines()}"
        f"Content-Type: application/json\r\nContent-Length: {len(INCIDENT)}\r\n\r\n".encode()
        + INCIDENT
    )
    status = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    if b" 201 " not in status or "legation-position" not in headers:
        raise RuntimeError(f"POST answered {status!r} {body[:300]!r}")
    return int(headers["legation-position"])


async def _append(port: int, appends: int) -> dict[int, float]:
    """`appends` POSTs paced INTERVAL_S apart: send time by returned position."""
    reader, writer = await asyncio.open_connection(HOST, port)
    sent: dict[int, float] = {}
    try:
        started = time.monotonic()
        for index in range(appends):
            await asyncio.sleep(max(0.0, started + index * INTERVAL_S - time.monotonic()))
            before = time.monotonic()
            sent[await _post(reader, writer, port)] = before
    finally:
        writer.close()
    return sent


async def _all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Outcome:
    latencies_ms: list[float]
    spread_ms: tuple[list[float], list[float]]  # per append: to the first client, to the last
    missed: int
    disordered: int
    rss_mb: float
    connect_s: float
    append_s: float
    drain_s: float
    server_cpu_s: float  # from the first append until every client caught up
    client_cpu_s: float


async def _connect(subscribers: list[Client], port: int) -> None:
    gate = asyncio.Semaphore(CONNECTING)
    tasks = [asyncio.create_task(_open(c, port, gate)) for c in subscribers]
    try:
        async with asyncio.timeout(SETUP_TIMEOUT_S):
            await asyncio.gather(*tasks)
    except TimeoutError:
        raise RuntimeError(f"clients not all connected after {SETUP_TIMEOUT_S:g} s") from None
    finally:
        for task in tasks:
            task.cancel()


async def _measure(server: Server, head: int, clients: int, appends: int) -> Outcome:
    request = (
        f"GET /v1/events/stream?after={head} HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    subscribers = [Client(request) for _ in range(clients)]
    try:
        started = time.monotonic()
        await _connect(subscribers, server.port)
        connect_s = time.monotonic() - started

        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        started = time.monotonic()
        sent = await _append(server.port, appends)
        drain_started = time.monotonic()
        last = max(sent)
        for client in subscribers:
            client.want = last
            if client.positions and client.positions[-1] >= last:
                client.caught_up.set()
        # Events arrive in order: whoever has the last position has had its chance at all.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await _all_set([c.caught_up for c in subscribers])
        drain_s = time.monotonic() - drain_started
        server_cpu = cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        rss = rss_mb(server.pid)  # clients still connected
    finally:
        for client in subscribers:
            if client.transport is not None:
                client.transport.close()

    latencies, missed, disordered = _latencies(subscribers, sent)
    return Outcome(
        latencies,
        _spread(subscribers, sent),
        missed,
        disordered,
        rss,
        connect_s,
        drain_started - started,
        drain_s,
        server_cpu,
        client_cpu,
    )


def _spread(subscribers: list[Client], sent: dict[int, float]) -> tuple[list[float], list[float]]:
    """Per append, milliseconds from its POST to the first and to the last client's receipt:
    the first is the POST and one write, the rest is the fan-out's way through the clients."""
    first = dict.fromkeys(sent, float("inf"))
    last = dict.fromkeys(sent, 0.0)
    for client in subscribers:
        for position, at in zip(client.positions, client.times, strict=True):
            if position in sent:
                first[position] = min(first[position], at)
                last[position] = max(last[position], at)
    reached = [p for p in sent if last[p]]
    return (
        [(first[p] - sent[p]) * 1000 for p in reached],
        [(last[p] - sent[p]) * 1000 for p in reached],
    )


def _latencies(subscribers: list[Client], sent: dict[int, float]) -> tuple[list[float], int, int]:
    """Append-to-receipt milliseconds of every delivery, how many never arrived, and how
    many clients received positions out of order or twice."""
    latencies, missed, disordered = [], 0, 0
    for client in subscribers:
        positions = client.positions
        if any(a >= b for a, b in itertools.pairwise(positions)):
            disordered += 1
        received = dict(zip(positions, client.times, strict=True))
        for position, at in sent.items():
            got = received.get(position)
            if got is None:
                missed += 1
            else:
                latencies.append((got - at) * 1000)
    return latencies, missed, disordered


# --- Report -----------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.subscribe", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_CLIENTS} clients, {QUICK_APPENDS} appends"
    )
    parser.add_argument("--clients", type=int, help=f"SSE clients ({DEFAULT_CLIENTS:,})")
    parser.add_argument("--appends", type=int, help=f"appends ({DEFAULT_APPENDS})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    clients = args.clients or (QUICK_CLIENTS if args.quick else DEFAULT_CLIENTS)
    appends = args.appends or (QUICK_APPENDS if args.quick else DEFAULT_APPENDS)
    _raise_nofile()
    started = time.monotonic()
    with (
        scratch_database() as dsn,
        tempfile.TemporaryDirectory() as tmp,
        legation(dsn, Path(tmp) / "legation.log") as srv,
    ):
        head = _ready(f"http://{HOST}:{srv.port}/ready") or 0
        outcome = uvloop.run(_measure(srv, head, clients, appends))
    p50 = percentile(outcome.latencies_ms, 0.50) or 0.0
    p99 = percentile(outcome.latencies_ms, 0.99) or 0.0
    rows = [
        Row("sse_latency_p50", p50, "ms"),
        Row("sse_latency_p99", p99, "ms"),
        Row("sse_server_rss", outcome.rss_mb, "MB"),
    ]
    title = (
        f"SSE fan-out: {clients:,} clients, {appends} appends {INTERVAL_S * 1000:g} ms apart; "
        f"latency = receipt - POST send (includes the POST round trip); "
        f"clients connected in {outcome.connect_s:.1f} s, appends took "
        f"{outcome.append_s:.1f} s, drained in {outcome.drain_s:.1f} s; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    print()
    pairs = clients * appends
    print(
        f"{'deliveries missed':<42} {outcome.missed:>6,} of {pairs:,} (target 0: "
        f"{_verdict(outcome.missed == 0)})"
    )
    print(
        f"{'clients that got positions out of order':<42} {outcome.disordered:>6,} of "
        f"{clients:,} (target 0: {_verdict(outcome.disordered == 0)})"
    )
    print(
        f"{'append-to-receipt p99':<42} {p99:6.1f} ms (target <= {P99_TARGET_MS:g} ms at "
        f"{DEFAULT_CLIENTS:,} clients: {_verdict(p99 <= P99_TARGET_MS)})"
    )
    print(
        f"{'server RSS, clients connected':<42} {outcome.rss_mb:6.1f} MB (target <= "
        f"{RSS_TARGET_MB:g} MB at {DEFAULT_CLIENTS:,} clients: "
        f"{_verdict(outcome.rss_mb <= RSS_TARGET_MB)})"
    )
    first_ms, last_ms = outcome.spread_ms
    print(
        f"{'per append, to first / last client p50':<42} "
        f"{percentile(first_ms, 0.5) or 0:6.1f} / {percentile(last_ms, 0.5) or 0:.1f} ms "
        f"(p99 {percentile(first_ms, 0.99) or 0:.1f} / {percentile(last_ms, 0.99) or 0:.1f})"
    )
    # CPU from the first append until every client caught up, per event delivered: what
    # the server spends to reach one client, and what these clients spend to receive.
    for name, seconds in (("server", outcome.server_cpu_s), ("clients", outcome.client_cpu_s)):
        print(
            f"{name + ' CPU per delivery':<42} {seconds / pairs * 1e6:6.1f} us "
            f"({seconds:.1f} s in {outcome.append_s + outcome.drain_s:.1f} s)"
        )
    merge_results(rows)
    return 0 if outcome.missed == 0 and outcome.disordered == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
