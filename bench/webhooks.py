"""Webhook throughput: deliveries/s to a local receiver, one subscription and twenty at once.

A real `legation serve` on a scratch database (LEGATION_WEBHOOK_ALLOW_PRIVATE), and a
minimal keep-alive HTTP receiver in this process that answers 200 to every request.

(a) One subscription from the log head, paused (PATCH active false); one POST
    /v1/incidents:batch of W reports; once the read models have caught up (their work
    would share the cores), the subscription is resumed, and deliveries/s is W over the
    time from the resume until all W have arrived.
(b) The first deleted, S subscriptions (20) from the new head, each to its own path,
    paused likewise; one batch of B reports; all resumed, every subscription receives all
    B, and deliveries/s is S x B over the time from the first resume until the last
    delivery has arrived.

The receiver checks that each subscription's deliveries come in log order (CloudEvents
`sequence` never going back; a repeat of the last one is counted as a duplicate, which
at-least-once allows) and verifies the Standard Webhooks signature of every SAMPLE-th
delivery with the secret its subscription was made with. The server's CPU seconds per
delivery (from /proc) are printed beside each figure.
Run: python -m bench.webhooks [--quick] [--webhooks W] [--subscriptions S] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import uvloop
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.common import AUTH, Row, merge_results, print_table, scratch_database
from bench.reports import INCIDENT
from bench.subscribe import Server, cpu_seconds, legation

DEFAULT_WEBHOOKS, QUICK_WEBHOOKS = 2_000, 300
DEFAULT_SUBSCRIPTIONS = 20
DEFAULT_BATCH, QUICK_BATCH = 500, 100
TIMEOUT_S = 120.0
SAMPLE = 97  # every SAMPLE-th delivery of a subscription has its signature verified
ONE_TARGET, MANY_TARGET = 400.0, 1_000.0
HOST = "127.0.0.1"
# The receiver is on loopback, which deliveries refuse unless told otherwise.
PRIVATE_RECEIVERS = {"LEGATION_WEBHOOK_ALLOW_PRIVATE": "true"}


async def _request(
    port: int, method: str, path: str, content_type: str = "application/json", body: bytes = b""
) -> tuple[bytes, bytes]:
    """One request on its own connection (closed after): status line and body."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        auth = "".join(f"{name}: {value}\r\n" for name, value in AUTH.items())
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n{auth}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = await reader.readline()
        while await reader.readline() not in (b"\r\n", b""):
            pass
        return status, await reader.read()
    finally:
        writer.close()


async def _checked(port: int, method: str, path: str, want: bytes, body: bytes = b"") -> bytes:
    content_type = "application/x-ndjson" if path.endswith(":batch") else "application/json"
    status, answer = await _request(port, method, path, content_type, body)
    if want not in status:
        raise RuntimeError(f"{method} {path} answered {status!r} {answer[:300]!r}")
    return answer


# --- Receiver ---------------------------------------------------------------------------


class Delivered(msgspec.Struct):
    sequence: str


_decode = msgspec.json.Decoder(Delivered).decode


@dataclass
class Inbox:
    """What one subscription's path received."""

    want: int
    secret: str
    last: int = 0
    positions: set[int] = field(default_factory=set)
    duplicates: int = 0
    out_of_order: list[tuple[int, int]] = field(default_factory=list)
    samples: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, head: bytes, body: bytes) -> None:
        position = int(_decode(body).sequence)
        if position < self.last:
            self.out_of_order.append((self.last, position))
        elif position == self.last or position in self.positions:
            self.duplicates += 1
        self.last = max(self.last, position)
        self.positions.add(position)
        if len(self.positions) % SAMPLE == 1:
            self.samples.append((_headers(head), body))
        if len(self.positions) >= self.want:
            self.done.set()


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.partition(":") for line in lines if line)
    return {name.strip().lower(): value.strip() for name, _, value in pairs}


@dataclass
class Receiver:
    """Answers 200 to every POST on keep-alive connections; files each under its path."""

    port: int = 0  # known once listening
    inboxes: dict[bytes, Inbox] = field(default_factory=dict)
    unknown: int = 0
    connections: int = 0  # accepted so far: keep-alive makes few
    handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers[task] = writer
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                start = lower.index(b"content-length:") + 15
                length = int(lower[start : lower.index(b"\r\n", start)])
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                path = head.split(b" ", 2)[1]
                inbox = self.inboxes.get(path)
                if inbox is None:
                    self.unknown += 1
                else:
                    inbox.take(head, body)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # closed (ValueError: no content-length, which every delivery has)
        finally:
            writer.close()


def _verified(inbox: Inbox) -> int:
    """How many sampled deliveries failed signature verification."""
    hook, bad = Webhook(inbox.secret), 0
    for headers, body in inbox.samples:
        try:
            hook.verify(body, headers)
        except WebhookVerificationError:
            bad += 1
    return bad


# --- Measurements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    deliveries: int
    seconds: float
    cpu_s: float
    out_of_order: int
    duplicates: int
    verified: int
    bad_signatures: int
    connections: int

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds


async def _subscribe(port: int, receiver: Receiver, path: str, after: int, want: int) -> str:
    body = json.dumps({"url": f"http://{HOST}:{receiver.port}{path}", "after": after})
    made = json.loads(await _checked(port, "POST", "/v1/subscriptions", b" 201 ", body.encode()))
    receiver.inboxes[path.encode()] = Inbox(want, made["secret"])
    return str(made["id"])


async def _active(port: int, subscription: str, *, active: bool) -> None:
    body = json.dumps({"active": active}).encode()
    await _checked(port, "PATCH", f"/v1/subscriptions/{subscription}", b" 200 ", body)


async def _head(port: int) -> int:
    head: int = json.loads(await _checked(port, "GET", "/ready", b" 200 ")).get("log_head", 0)
    return head


async def _projected(port: int) -> None:
    """Wait for the read models to catch up: their work would otherwise share the timing."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if not json.loads(await _checked(port, "GET", "/ready", b" 200 ")).get("projector_lag"):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the read models did not catch up in {TIMEOUT_S:g} s")


async def _deliver(server: Server, receiver: Receiver, paths: list[str], reports: int) -> Run:
    """Subscribe `paths` from the head, paused; append `reports` in one batch; resume them
    all and wait for every delivery."""
    head = await _head(server.port)
    ids = [await _subscribe(server.port, receiver, path, head, reports) for path in paths]
    inboxes = [receiver.inboxes[path.encode()] for path in paths]
    for subscription in ids:
        await _active(server.port, subscription, active=False)
    await _checked(
        server.port, "POST", "/v1/incidents:batch", b" 201 ", b"\n".join([INCIDENT] * reports)
    )
    await _projected(server.port)
    cpu, connections = cpu_seconds(server.pid), receiver.connections
    started = time.monotonic()
    for subscription in ids:
        await _active(server.port, subscription, active=True)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            for inbox in inboxes:
                await inbox.done.wait()
    except TimeoutError:
        got = sum(len(inbox.positions) for inbox in inboxes)
        raise RuntimeError(
            f"{got} of {reports * len(paths)} webhooks delivered in {TIMEOUT_S:g} s"
        ) from None
    seconds = time.monotonic() - started
    cpu = cpu_seconds(server.pid) - cpu
    for subscription in ids:
        await _checked(server.port, "DELETE", f"/v1/subscriptions/{subscription}", b" 204 ")
    return Run(
        deliveries=reports * len(paths),
        seconds=seconds,
        cpu_s=cpu,
        out_of_order=sum(len(inbox.out_of_order) for inbox in inboxes),
        duplicates=sum(inbox.duplicates for inbox in inboxes),
        verified=sum(len(inbox.samples) for inbox in inboxes),
        bad_signatures=sum(_verified(inbox) for inbox in inboxes),
        connections=receiver.connections - connections,
    )


async def _measure(server: Server, webhooks: int, subscriptions: int, batch: int) -> list[Run]:
    receiver = Receiver()
    hooks = await asyncio.start_server(receiver.serve, HOST, 0)
    receiver.port = hooks.sockets[0].getsockname()[1]
    try:
        one = await _deliver(server, receiver, ["/hooks/one"], webhooks)
        paths = [f"/hooks/{index}" for index in range(subscriptions)]
        many = await _deliver(server, receiver, paths, batch)
        if receiver.unknown:
            raise RuntimeError(f"{receiver.unknown} deliveries to no subscription's path")
        return [one, many]
    finally:
        hooks.close()
        for writer in receiver.handlers.values():
            writer.close()  # the handler then reads EOF and returns
        await asyncio.gather(*receiver.handlers, return_exceptions=True)
        await hooks.wait_closed()


# --- Report -----------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller batches")
    parser.add_argument(
        "--webhooks", type=int, help=f"reports for one subscription ({DEFAULT_WEBHOOKS:,})"
    )
    parser.add_argument(
        "--subscriptions", type=int, default=DEFAULT_SUBSCRIPTIONS, help="subscriptions (20)"
    )
    parser.add_argument("--batch", type=int, help=f"reports each of them gets ({DEFAULT_BATCH})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    webhooks = args.webhooks or (QUICK_WEBHOOKS if args.quick else DEFAULT_WEBHOOKS)
    batch = args.batch or (QUICK_BATCH if args.quick else DEFAULT_BATCH)
    subscriptions = args.subscriptions
    started = time.monotonic()
    with (
        scratch_database() as dsn,
        tempfile.TemporaryDirectory() as tmp,
        legation(
            dsn, Path(tmp) / "legation.log", {"LEGATION_WEBHOOK_ALLOW_PRIVATE": "true"}
        ) as srv,
    ):
        one, many = uvloop.run(_measure(srv, webhooks, subscriptions, batch))
    rows = [
        Row("webhooks_1_subscription_per_s", one.per_s, "deliveries/s"),
        Row(f"webhooks_{subscriptions}_subscriptions_per_s", many.per_s, "deliveries/s"),
    ]
    title = (
        f"Webhooks to a local receiver: {webhooks:,} reports to one subscription, then "
        f"{batch:,} reports to each of {subscriptions} subscriptions; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    print_table(rows, title)
    print()
    failures = 0
    for name, run, target in (
        ("1 subscription", one, ONE_TARGET),
        (f"{subscriptions} subscriptions", many, MANY_TARGET),
    ):
        print(
            f"{name + ', deliveries/s':<42} {run.per_s:6.0f} (target >= {target:g}: "
            f"{_verdict(run.per_s >= target)}); server CPU "
            f"{run.cpu_s / run.deliveries * 1e6:.0f} us a delivery"
        )
        print(
            f"{'  out of order / duplicates':<42} {run.out_of_order} / {run.duplicates}; "
            f"signatures verified {run.verified}, bad {run.bad_signatures}; "
            f"connections opened {run.connections}"
        )
        failures += run.out_of_order + run.bad_signatures
    merge_results(rows)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
