"""Leased deliveries: a receiver that never answers holds up no one else, and a lease is exclusive.

The tarpit is a real socket on loopback that accepts connections and never
answers, as a hung or hostile receiver would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.log.doorbell import Doorbell
from service.subscribers.webhooks import Deliverer
from tests.conftest import authorised
from tests.factories import expulsion
from tests.http import test_webhooks
from tests.http.test_webhooks import Client, Receiver, subscribe, until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# The bound is a few hundred milliseconds; the old code took the whole 10 s
# timeout. The margin is for a loaded 2-core machine.
OTHERS_DELAY_BOUND_S = 1.5
hooks, receiver = test_webhooks.hooks, test_webhooks.receiver  # fixtures shared with them


class Tarpit:
    """A loopback TCP server that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/hooks"
        self.connections: list[socket.socket] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        # Closing alone does not wake a thread blocked in accept(), which would then take
        # one more connection after the others were closed, and leave it open.
        self.socket.shutdown(socket.SHUT_RDWR)
        self.accepting.join()
        self.socket.close()
        for connection in self.connections:
            connection.close()


@contextmanager
def tarpit() -> Iterator[Tarpit]:
    made = Tarpit()
    try:
        yield made
    finally:
        made.close()


async def test_a_receiver_that_never_answers_does_not_delay_another(
    hooks: Client, receiver: Receiver, pool: asyncpg.Pool[Any]
) -> None:
    with tarpit() as stuck:
        hung = await subscribe(hooks, stuck.url)  # made first, so claimed first
        await subscribe(hooks, receiver.url)
        delays = []
        for n in range(1, 4):
            assert (await hooks.post("/v1/incidents", json=expulsion(count=n))).status_code == 201
            appended = time.monotonic()
            await until(lambda n=n: len(receiver.received) == n)
            delays.append(time.monotonic() - appended)
        # The tarpit's first delivery is still in flight: nothing recorded for it yet.
        assert stuck.connections
        recorded = await pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE subscription_id = $1", hung["id"]
        )
        assert recorded == 0
    assert max(delays) < OTHERS_DELAY_BOUND_S, delays
    assert [e["sequence"] for e in receiver.events()] == ["1", "2", "3"]


class SlowReceiver(Receiver):
    """A receiver that takes a while to answer and notes how many requests overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        handler = self.server.RequestHandlerClass
        do_post = handler.do_POST  # type: ignore[attr-defined]
        slow = self

        def slow_post(request: Any) -> None:
            with slow.lock:
                slow.in_flight += 1
                slow.most_in_flight = max(slow.most_in_flight, slow.in_flight)
            try:
                time.sleep(0.05)
                do_post(request)
            finally:
                with slow.lock:
                    slow.in_flight -= 1

        handler.do_POST = slow_post  # type: ignore[attr-defined]


async def test_two_instances_never_deliver_to_one_subscription_at_once(
    dsn: str, hooks: Client, admin_key: str
) -> None:
    slow = SlowReceiver()
    settings = Settings(database_url=dsn, webhook_allow_private=True, webhook_retry_scale=0.01)
    try:
        async with AsyncTestClient(app=create_app(settings)) as second:
            authorised(second, admin_key)
            await subscribe(hooks, slow.url)
            batch = "\n".join(json.dumps(expulsion(count=n)) for n in range(1, 21)).encode()
            response = await second.post(
                "/v1/incidents:batch",
                content=batch,
                headers={"content-type": "application/x-ndjson"},
            )
            assert response.status_code == 201, response.text
            await until(lambda: len(slow.received) >= 20, within=30)
            await asyncio.sleep(0.3)
    finally:
        slow.server.shutdown()
        slow.server.server_close()
    assert slow.most_in_flight == 1
    assert [e["sequence"] for e in slow.events()] == [str(n) for n in range(1, 21)]


@pytest.fixture
async def appended(dsn: str, admin_key: str) -> None:
    """Three events in the log, appended by an app that has stopped since."""
    async with AsyncTestClient(app=create_app(Settings(database_url=dsn))) as client:
        authorised(client, admin_key)
        for n in range(1, 4):
            assert (await client.post("/v1/incidents", json=expulsion(count=n))).status_code == 201


async def test_a_lease_that_runs_out_is_taken_over_and_the_late_outcome_is_ignored(
    dsn: str, pool: asyncpg.Pool[Any], receiver: Receiver, appended: None
) -> None:
    subscription = await pool.fetchval(
        "INSERT INTO subscriptions (id, url, secret, position) VALUES (gen_random_uuid(), $1,"
        " $2, 0) RETURNING id",
        receiver.url,
        SECRET,
    )
    settings = Settings(database_url=dsn, webhook_allow_private=True)
    crashed, survivor = (Deliverer(pool, Doorbell(dsn), settings) for _ in range(2))
    try:
        stalled = await crashed.claim()
        assert stalled is not None
        assert stalled.live.event.position == 1
        assert await survivor.claim() is None  # leased: not the survivor's to take
        # As if the lease had run out.
        await pool.execute("UPDATE subscriptions SET leased_until = now() - interval '1 second'")
        taken = await survivor.claim()
        assert taken is not None
        assert taken.live.event.position == 1  # the same event again
        following = await survivor.deliver(taken)
        assert await crashed.deliver(stalled) is None  # late: POSTed, but its outcome is dropped
        while following is not None:  # the survivor's lease goes on to the next events
            following = await survivor.deliver(following)
        assert not await survivor.deliver_one()
    finally:
        await crashed.stop()
        await survivor.stop()
    assert [e["sequence"] for e in receiver.events()] == ["1", "1", "2", "3"]
    rows = await pool.fetch(
        "SELECT position, attempt FROM deliveries WHERE subscription_id = $1 ORDER BY id",
        subscription,
    )
    assert [tuple(row) for row in rows] == [(1, 1), (2, 1), (3, 1)]
    assert await pool.fetchval("SELECT position FROM subscriptions") == 3


async def test_pausing_stops_a_run_of_deliveries_after_the_one_in_flight(hooks: Client) -> None:
    slow = SlowReceiver()
    try:
        subscription = await subscribe(hooks, slow.url)
        batch = "\n".join(json.dumps(expulsion(count=n)) for n in range(1, 21)).encode()
        response = await hooks.post(
            "/v1/incidents:batch", content=batch, headers={"content-type": "application/x-ndjson"}
        )
        assert response.status_code == 201, response.text
        await until(lambda: len(slow.received) >= 2)
        url = f"/v1/subscriptions/{subscription['id']}"
        assert (await hooks.patch(url, json={"active": False})).status_code == 200
        paused_at = len(slow.received)
        await asyncio.sleep(1.5)  # 20 deliveries take 1 s at 50 ms each
    finally:
        slow.server.shutdown()
        slow.server.server_close()
    assert len(slow.received) <= paused_at + 1  # the one in flight when paused
    assert (await hooks.get(url)).json()["position"] < 20


async def test_a_stopping_process_gives_its_leases_back(
    dsn: str, pool: asyncpg.Pool[Any], receiver: Receiver, appended: None
) -> None:
    await pool.execute(
        "INSERT INTO subscriptions (id, url, secret, position) VALUES (gen_random_uuid(), $1,"
        " $2, 0)",
        receiver.url,
        SECRET,
    )
    settings = Settings(database_url=dsn, webhook_allow_private=True)
    stopping, other = (Deliverer(pool, Doorbell(dsn), settings) for _ in range(2))
    try:
        assert await stopping.claim() is not None
        await stopping.stop()
        taken = await other.claim()  # at once, not when the lease would have run out
        assert taken is not None
        assert taken.live.event.position == 1
    finally:
        await other.stop()
