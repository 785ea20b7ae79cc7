"""PATCH a subscription (point it elsewhere, filter otherwise, replay or skip), with
deliveries in flight; rotate its secret; ping it."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.subscribers.cloud_events import new_secret
from tests.conftest import make_key
from tests.factories import expulsion, sanctions_round
from tests.http import test_subscriptions, test_webhooks
from tests.http.test_subscriptions import bearer
from tests.http.test_webhooks import Client, Receiver, as_documented, subscribe, until

hooks, receiver = test_webhooks.hooks, test_webhooks.receiver  # fixtures shared with them
app_client = test_subscriptions.app_client


class GatedReceiver(Receiver):
    """A receiver that holds its `hold`-th request (1-based) until `release()`, and notes
    how many requests were ever in flight at once."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        self.gate, self.held = threading.Event(), threading.Event()
        self.in_flight = self.most_in_flight = self.seen = 0
        self.lock = threading.Lock()
        handler = self.server.RequestHandlerClass
        do_post = handler.do_POST  # type: ignore[attr-defined]
        gated = self

        def gated_post(request: Any) -> None:
            with gated.lock:
                gated.seen += 1
                number = gated.seen
                gated.in_flight += 1
                gated.most_in_flight = max(gated.most_in_flight, gated.in_flight)
            try:
                if number == hold:
                    gated.held.set()
                    gated.gate.wait(10)
                do_post(request)
            finally:
                with gated.lock:
                    gated.in_flight -= 1

        handler.do_POST = gated_post  # type: ignore[attr-defined]

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


async def report(client: Client, count: int, **changes: Any) -> int:
    response = await client.post("/v1/incidents", json=expulsion(count=count, **changes))
    assert response.status_code == 201, response.text
    return int(response.headers["legation-position"])


def sequences(receiver: Receiver) -> list[int]:
    return [int(event["sequence"]) for event in receiver.events()]


async def position_of(client: Client, subscription: dict[str, Any], position: int) -> None:
    url = f"/v1/subscriptions/{subscription['id']}"

    async def there() -> bool:
        return bool((await client.get(url)).json()["position"] == position)

    async with asyncio.timeout(10):
        while not await there():  # noqa: ASYNC110 - polls the HTTP API
            await asyncio.sleep(0.05)


async def patch(client: Client, subscription: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.patch(f"/v1/subscriptions/{subscription['id']}", json=body)
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    return changed


# --- replay and skip ---------------------------------------------------------------------


async def test_after_rewinds_and_the_events_come_again_in_log_order(
    hooks: Client, receiver: Receiver
) -> None:
    subscription = await subscribe(hooks, receiver.url)
    for n in range(1, 4):
        await report(hooks, n)
    await position_of(hooks, subscription, 3)
    changed = await patch(hooks, subscription, after=1)
    assert changed["position"] == 1
    await position_of(hooks, subscription, 3)
    assert sequences(receiver) == [1, 2, 3, 2, 3]


async def test_after_time_starts_from_the_first_event_recorded_then_or_later(
    hooks: Client, receiver: Receiver
) -> None:
    for n in range(1, 4):
        await report(hooks, n)
    events = (await hooks.get("/v1/events")).json()["items"]
    subscription = await subscribe(hooks, receiver.url, after=3)
    second = events[1]["recorded_at"]
    changed = await patch(hooks, subscription, after_time=second)
    assert changed["position"] == 1  # after the last event recorded before that instant
    await position_of(hooks, subscription, 3)
    assert sequences(receiver) == [2, 3]
    # An instant between two events: from the later one.
    between = datetime.fromisoformat(events[0]["recorded_at"]) + timedelta(microseconds=1)
    assert between < datetime.fromisoformat(second)
    assert (await patch(hooks, subscription, after_time=between.isoformat()))["position"] == 1
    await until(lambda: len(receiver.received) == 4)
    await position_of(hooks, subscription, 3)
    assert sequences(receiver) == [2, 3, 2, 3]
    before_all = datetime.fromisoformat(events[0]["recorded_at"]) - timedelta(seconds=1)
    assert (await patch(hooks, subscription, after_time=before_all.isoformat()))["position"] == 0


async def test_after_skips_a_failing_event_and_its_retries(
    hooks: Client, receiver: Receiver, pool: asyncpg.Pool[Any]
) -> None:
    receiver.statuses = [500] * 100
    subscription = await subscribe(hooks, receiver.url)
    await report(hooks, 1)
    await until(lambda: len(receiver.received) >= 2)  # failing, retried
    head = await report(hooks, 2)
    receiver.statuses = []
    changed = await patch(hooks, subscription, after=head)
    assert changed["position"] == head
    row = await pool.fetchrow(
        "SELECT attempt, failing_since FROM subscriptions WHERE id = $1",
        uuid.UUID(subscription["id"]),
    )
    assert row is not None
    assert (row["attempt"], row["failing_since"]) == (0, None)
    await report(hooks, 3)
    await until(lambda: sequences(receiver)[-1:] == [3])
    assert 2 not in sequences(receiver)


async def test_url_types_and_countries_change_what_is_sent_where(
    hooks: Client, receiver: Receiver
) -> None:
    other = Receiver()
    try:
        subscription = await subscribe(hooks, receiver.url)
        await report(hooks, 1)
        await until(lambda: len(receiver.received) == 1)
        changed = await patch(
            hooks, subscription, url=other.url, types=["sanctions_round.reported"]
        )
        assert (changed["url"], changed["types"]) == (other.url, ["sanctions_round.reported"])
        await report(hooks, 2)
        await hooks.post("/v1/incidents", json=sanctions_round())
        await until(lambda: len(other.received) == 1)
        assert [e["type"] for e in other.events()] == ["sanctions_round.reported"]
        changed = await patch(hooks, subscription, types=[], countries=["bel"])
        assert (changed["types"], changed["countries"]) == ([], ["BE"])
        await report(hooks, 4, expelled="BE")
        await report(hooks, 5)
        await until(lambda: len(other.received) == 2)
        await asyncio.sleep(0.3)
        assert [e["data"]["expelled"] for e in other.events()[1:]] == ["BE"]
        assert len(receiver.received) == 1  # nothing went to the old URL since
    finally:
        other.server.shutdown()
        other.server.server_close()


# --- a change while a delivery is in flight ----------------------------------------------


async def append_batch(client: Client, count: int) -> None:
    lines = "\n".join(json.dumps(expulsion(count=n)) for n in range(1, count + 1)).encode()
    response = await client.post(
        "/v1/incidents:batch", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 201, response.text


async def test_a_rewind_while_a_delivery_is_in_flight_replays_in_order_one_at_a_time(
    hooks: Client, pool: asyncpg.Pool[Any]
) -> None:
    gated = GatedReceiver(hold=3)
    try:
        subscription = await subscribe(hooks, gated.url)
        await append_batch(hooks, 3)
        await until(gated.held.is_set)  # the third event is in flight, its lease held
        await patch(hooks, subscription, after=1)
        gated.release()
        await until(lambda: len(gated.received) == 5)
        await position_of(hooks, subscription, 3)
        await asyncio.sleep(0.2)
    finally:
        gated.close()
    # The acknowledgement of the third did not undo the rewind, nor did its lease run on.
    assert sequences(gated) == [1, 2, 3, 2, 3]
    assert gated.most_in_flight == 1
    attempts = await pool.fetch(
        "SELECT position, attempt, status_code FROM deliveries WHERE subscription_id = $1"
        " ORDER BY id",
        uuid.UUID(subscription["id"]),
    )
    assert [tuple(a) for a in attempts] == [(n, 1, 200) for n in (1, 2, 3, 2, 3)]


async def test_a_skip_while_a_delivery_is_in_flight_does_not_send_what_was_skipped(
    hooks: Client,
) -> None:
    gated = GatedReceiver(hold=1)
    try:
        subscription = await subscribe(hooks, gated.url)
        await append_batch(hooks, 5)
        await until(gated.held.is_set)  # the first is in flight; the page holds all five
        await patch(hooks, subscription, after=4)
        gated.release()
        await until(lambda: len(gated.received) == 2)
        await position_of(hooks, subscription, 5)
        await asyncio.sleep(0.3)
    finally:
        gated.close()
    assert sequences(gated) == [1, 5]


# --- bad changes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": 2}, "after"),
        ({"after_time": "2999-01-01T00:00:00Z"}, "after_time"),
        ({"after_time": "2022-04-19T10:00:00"}, "after_time"),  # no offset: not RFC 3339
        ({"after_time": "yesterday"}, "after_time"),
        ({"after": 0, "after_time": "2022-04-19T10:00:00Z"}, "after_time"),
        ({"topics": ["weather"]}, "topics[0]"),
        ({"topics": []}, "topics"),
        ({"types": ["nothing.happened"]}, "type"),
        ({"url": "http://127.0.0.1:9/hooks"}, "url"),
        ({"active": None}, "active"),
        ({"secret": "mine"}, "secret"),
        ({}, "body"),
    ],
)
async def test_a_bad_change_is_422_naming_the_field_and_changes_nothing(
    client: Client, pool: asyncpg.Pool[Any], body: dict[str, Any], field: str
) -> None:
    await report(client, 1)
    # Made here: example.org does not resolve where the tests run, and creation checks it.
    made = await pool.fetchval(
        "INSERT INTO subscriptions (id, url, secret, position, owner)"
        " VALUES (gen_random_uuid(), 'https://example.org/hooks', $1, 0, 'tests') RETURNING id",
        new_secret(),
    )
    url = f"/v1/subscriptions/{made}"
    response = await client.patch(url, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    read = (await client.get(url)).json()
    assert {k: read[k] for k in ("url", "types", "topics", "position", "active")} == {
        "url": "https://example.org/hooks",
        "types": [],
        "topics": ["events"],
        "position": 0,
        "active": True,
    }


# --- rotating the secret -----------------------------------------------------------------


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_day_then_alone(
    hooks: Client, receiver: Receiver, pool: asyncpg.Pool[Any]
) -> None:
    subscription = await subscribe(hooks, receiver.url)
    old = subscription["secret"]
    rotated = await hooks.post(f"/v1/subscriptions/{subscription['id']}/secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    read = (await hooks.get(f"/v1/subscriptions/{subscription['id']}")).json()
    assert "secret" not in read
    await report(hooks, 1)
    await until(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verifies(old, headers, body)  # each secret alone verifies it
    assert verifies(new, headers, body)
    # A day later the old one no longer signs.
    await pool.execute(
        "UPDATE subscriptions SET previous_secret_until = now() - interval '1 second'"
    )
    await report(hooks, 2)
    await until(lambda: len(receiver.received) == 2)
    headers, body = receiver.received[1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, headers, body)
    assert not verifies(old, headers, body)


async def test_rotating_again_drops_the_oldest_secret(hooks: Client, receiver: Receiver) -> None:
    subscription = await subscribe(hooks, receiver.url)
    url = f"/v1/subscriptions/{subscription['id']}/secret"
    second = (await hooks.post(url)).json()["secret"]
    third = (await hooks.post(url)).json()["secret"]
    await report(hooks, 1)
    await until(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert [verifies(s, headers, body) for s in (subscription["secret"], second, third)] == [
        False,
        True,
        True,
    ]


async def test_only_the_owner_rotates_or_pings(app_client: Client, dsn: str) -> None:
    s1 = await make_key(dsn, ("subscribe",), name="s1")
    s2 = await make_key(dsn, ("subscribe",), name="s2")
    made = await app_client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/h"}, headers=bearer(s1)
    )
    url = f"/v1/subscriptions/{made.json()['id']}"
    assert (await app_client.post(f"{url}/secret", headers=bearer(s2))).status_code == 404
    assert (await app_client.post(f"{url}/ping", headers=bearer(s2))).status_code == 404
    missing = f"/v1/subscriptions/{uuid.uuid4()}"
    assert (await app_client.post(f"{missing}/secret", headers=bearer(s1))).status_code == 404


# --- ping --------------------------------------------------------------------------------


async def test_a_ping_is_sent_now_signed_and_answered_with_status_and_latency(
    hooks: Client, receiver: Receiver
) -> None:
    subscription = await subscribe(hooks, receiver.url, types=["incident.retracted"])
    await report(hooks, 1)
    url = f"/v1/subscriptions/{subscription['id']}/ping"
    answer = await hooks.post(url)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert (outcome["acknowledged"], outcome["status_code"], outcome["error"]) == (True, 200, None)
    assert isinstance(outcome["latency_ms"], int)
    assert outcome["latency_ms"] >= 0
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    ping = Webhook(subscription["secret"]).verify(body, headers)
    assert as_documented(body) == ping
    assert ping["type"] == "legation.ping"
    assert ping["source"] == f"/v1/subscriptions/{subscription['id']}"
    assert ping["id"] == headers["webhook-id"]
    assert "sequence" not in ping  # outside log order
    assert ping["data"]["subscription"] == subscription["id"]
    receiver.statuses = [503]
    failed = (await hooks.post(url)).json()
    assert (failed["acknowledged"], failed["status_code"]) == (False, 503)
    # A ping is not a delivery: the log and the deliveries are untouched.
    deliveries = (await hooks.get(f"/v1/subscriptions/{subscription['id']}/deliveries")).json()
    assert deliveries["items"] == []
    assert (await hooks.get(f"/v1/subscriptions/{subscription['id']}")).json()["position"] == 1


async def test_a_ping_to_a_deactivated_subscription_is_409_naming_active(
    hooks: Client, receiver: Receiver
) -> None:
    subscription = await subscribe(hooks, receiver.url)
    await patch(hooks, subscription, active=False)
    answer = await hooks.post(f"/v1/subscriptions/{subscription['id']}/ping")
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["type"] == "urn:legation:problem:subscription-inactive"
    assert [e["field"] for e in problem["errors"]] == ["active"]
    assert receiver.received == []


async def test_a_ping_to_an_unreachable_receiver_answers_the_error(hooks: Client) -> None:
    made = await hooks.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hooks"})
    answer = await hooks.post(f"/v1/subscriptions/{made.json()['id']}/ping")
    assert answer.status_code == 200
    outcome = answer.json()
    assert outcome["acknowledged"] is False
    assert outcome["status_code"] is None
    assert outcome["error"]
