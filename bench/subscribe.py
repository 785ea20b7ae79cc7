"""Live fan-out: append-to-receipt latency over GET /v1/events/stream at many SSE clients.

A real `legation serve` on a scratch database; N SSE clients on raw asyncio streams in
this process (one connection each, `?after=<head>`); then M POST /v1/incidents, one
every ~20 ms on a separate connection. Latency is each client's receive time of an
event's `id:` line minus the time just before its POST was sent, so it includes the
POST round trip. Every client must receive every position. (Webhooks: bench/webhooks.py.)
Run: python -m bench.subscribe [--quick] [--clients N] [--appends M]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path

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

DEFAULT_CLIENTS, QUICK_CLIENTS = 1_000, 200
DEFAULT_APPENDS, QUICK_APPENDS = 200, 50
INTERVAL_S = 0.020
CONNECTING = 100  # clients opening at once
SETUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 15.0
P99_TARGET_MS = 100.0
RSS_TARGET_MB = 200.0
HOST = "127.0.0.1"
INCIDENT = json.dumps(
    {
        "kind": "expulsion",
        "occurred_on": "2022-04-19",
        "expelling": "RU",
        "expelled": "NL",
        "count": 15,
        "sources": [{"outlet": "AFP"}],
    }
).encode()


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
def legation(dsn: str, log: Path) -> Iterator[Server]:
    """`legation serve` on a free port with a raised open-file limit; SIGTERMed on exit."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "legation"), "serve", "--port", str(port)]
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "LEGATION_WEBHOOK_ALLOW_PRIVATE": "true",
        "LEGATION_RATE_LIMIT": "0",
        # Every client of the bench comes from this one address, and there may be more
        # than the caps let in by default.
        "LEGATION_MAX_STREAMS": "100000",
        "LEGATION_MAX_STREAMS_PER_ADDRESS": "100000",
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


@dataclass
class Client:
    """One SSE connection and the receive time of every position it saw."""

    received: dict[int, float] = field(default_factory=dict)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    want: int | None = None  # the last appended position, once every append is made
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.StreamWriter | None = None


async def _open(client: Client, port: int, after: int, gate: asyncio.Semaphore) -> None:
    async with gate:
        reader, writer = await asyncio.open_connection(HOST, port)
        client.writer = writer
        writer.write(
            f"GET /v1/events/stream?after={after} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream answered {status!r}")
        # Headers, then the body (chunked: size lines never start with "id: " or ":").
        while (line := await reader.readline()) not in (b"\r\n", b""):
            pass
        while (line := await reader.readline()).strip() != b": connected":
            if not line:
                raise RuntimeError("stream closed before `: connected`")
    client.connected.set()
    received, clock = client.received, time.monotonic
    while line := await reader.readline():
        if line.startswith(b"id: "):
            position = int(line[4:])
            received[position] = clock()
            if client.want is not None and position >= client.want:
                client.caught_up.set()


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


@dataclass(frozen=True)
class Outcome:
    latencies_ms: list[float]
    missed: int
    rss_mb: float
    connect_s: float
    drain_s: float


async def _measure(server: Server, head: int, clients: int, appends: int) -> Outcome:
    gate = asyncio.Semaphore(CONNECTING)
    subscribers = [Client() for _ in range(clients)]
    tasks = [asyncio.create_task(_open(c, server.port, head, gate)) for c in subscribers]
    try:
        started = time.monotonic()
        waiting = asyncio.create_task(_all_set([c.connected for c in subscribers]))
        done, _ = await asyncio.wait(
            [waiting, *tasks],
            timeout=SETUP_TIMEOUT_S,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            task.result()  # a client that failed raises here
        if not waiting.done():
            raise RuntimeError(f"clients not all connected after {SETUP_TIMEOUT_S:g} s")
        connect_s = time.monotonic() - started

        sent = await _append(server.port, appends)
        drain_started = time.monotonic()
        deadline = drain_started + DRAIN_TIMEOUT_S
        last = max(sent)
        for client in subscribers:
            client.want = last
            if max(client.received, default=0) >= last:
                client.caught_up.set()
        # Events arrive in order: whoever has the last position has had its chance at all.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                _all_set([c.caught_up for c in subscribers]), deadline - time.monotonic()
            )
        drain_s = time.monotonic() - drain_started
        rss = rss_mb(server.pid)  # clients still connected
    finally:
        for client in subscribers:
            if client.writer is not None:
                client.writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies, missed = _latencies(subscribers, sent)
    return Outcome(latencies, missed, rss, connect_s, drain_s)


def _latencies(subscribers: list[Client], sent: dict[int, float]) -> tuple[list[float], int]:
    """Append-to-receipt milliseconds of every delivery, and how many never arrived."""
    latencies, missed = [], 0
    for client in subscribers:
        for position, at in sent.items():
            got = client.received.get(position)
            if got is None:
                missed += 1
            else:
                latencies.append((got - at) * 1000)
    return latencies, missed


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
        f"clients connected in {outcome.connect_s:.1f} s, drained in {outcome.drain_s:.1f} s; "
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
        f"{'append-to-receipt p99':<42} {p99:6.1f} ms (target <= {P99_TARGET_MS:g} ms at "
        f"{DEFAULT_CLIENTS:,} clients: {_verdict(p99 <= P99_TARGET_MS)})"
    )
    print(
        f"{'server RSS, clients connected':<42} {outcome.rss_mb:6.1f} MB (target <= "
        f"{RSS_TARGET_MB:g} MB: {_verdict(outcome.rss_mb <= RSS_TARGET_MB)})"
    )
    merge_results(rows)
    return 0 if outcome.missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
