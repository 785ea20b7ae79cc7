"""Webhooks: a real receiver on loopback, verified as a receiving app would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from service.config import Settings
from service.http.openapi.webhooks import ENVELOPES
from tests.conftest import authorised
from tests.factories import expulsion, sanctions_round

Client = AsyncTestClient[Any]


class Receiver:
    """An HTTP endpoint recording every delivery and answering scripted statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture
async def hooks(dsn: str, admin_key: str) -> AsyncIterator[Client]:
    """An app whose webhooks may reach loopback, with retries 100 times faster."""
    settings = Settings(database_url=dsn, webhook_allow_private=True, webhook_retry_scale=0.01)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield authorised(client, admin_key)


async def subscribe(client: Client, url: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/subscriptions", json={"url": url, "after": 0, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def until(predicate: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the receiver is another thread
            await asyncio.sleep(0.05)


def as_documented(body: bytes) -> dict[str, Any]:
    """A delivery, checked against the envelope openapi.json documents for its type: every
    field it names is there with its type (it decodes as that Struct), and no other."""
    delivered: dict[str, Any] = msgspec.json.decode(body)
    envelope = ENVELOPES[delivered["type"]]
    msgspec.json.decode(body, type=envelope)
    assert set(delivered) == set(envelope.__struct_fields__), delivered["type"]
    return delivered


async def test_deliveries_are_signed_cloudevents_in_log_order(
    hooks: Client, receiver: Receiver
) -> None:
    subscription = await subscribe(hooks, receiver.url)
    assert subscription["secret"].startswith("whsec_")
    first = await hooks.post("/v1/incidents", json=expulsion())
    await hooks.post("/v1/incidents", json=sanctions_round())
    await until(lambda: len(receiver.received) == 2)
    verifier = Webhook(subscription["secret"])
    for headers, body in receiver.received:
        assert headers["content-type"] == "application/cloudevents+json"
        verifier.verify(body, headers)  # raises if the signature does not hold
        as_documented(body)
    one, two = receiver.events()
    incident = first.json()["id"]
    assert (one["specversion"], one["type"], one["subject"]) == (
        "1.0",
        "expulsion.reported",
        incident,
    )
    assert one["source"] == f"/v1/incidents/{incident}"
    assert (one["sequence"], two["sequence"]) == ("1", "2")
    assert one["id"] == receiver.received[0][0]["webhook-id"]
    assert one["data"]["expelled"] == "NL"
    assert two["type"] == "sanctions_round.reported"
    schema = await hooks.get(one["dataschema"])
    assert schema.json()["$id"] == "urn:legation:event:expulsion.reported:v2"


async def test_a_failing_receiver_gets_the_same_id_until_it_acknowledges(
    hooks: Client, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    subscription = await subscribe(hooks, receiver.url)
    await hooks.post("/v1/incidents", json=expulsion())
    await hooks.post("/v1/incidents", json=expulsion(expelled="BE"))
    await until(lambda: len(receiver.received) == 4)
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert [e["sequence"] for e in receiver.events()] == ["1", "1", "1", "2"]
    url = f"/v1/subscriptions/{subscription['id']}/deliveries"
    # The receiver has the fourth request before the deliverer records its answer.
    async with asyncio.timeout(10):
        while len(deliveries := (await hooks.get(url)).json()["items"]) < 4:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert [(d["position"], d["attempt"], d["status_code"]) for d in reversed(deliveries)] == [
        (1, 1, 500),
        (1, 2, 503),
        (1, 3, 200),
        (2, 1, 200),
    ]
    assert deliveries[-1]["next_retry_at"] is not None
    assert deliveries[0]["next_retry_at"] is None
    read = (await hooks.get(f"/v1/subscriptions/{subscription['id']}")).json()
    assert read["position"] == 2
    assert "secret" not in read


async def test_a_410_deactivates_the_subscription(hooks: Client, receiver: Receiver) -> None:
    receiver.statuses = [410]
    subscription = await subscribe(hooks, receiver.url)
    await hooks.post("/v1/incidents", json=expulsion())
    url = f"/v1/subscriptions/{subscription['id']}"
    await until(lambda: len(receiver.received) == 1)
    await asyncio.sleep(0.3)
    read = (await hooks.get(url)).json()
    assert read["active"] is False
    assert "410" in read["deactivated_reason"]
    assert read["position"] == 0
    await hooks.post("/v1/incidents", json=expulsion(expelled="BE"))
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1


async def test_type_and_country_filters_hold(hooks: Client, receiver: Receiver) -> None:
    await subscribe(hooks, receiver.url, types=["sanctions_round.reported"])
    other = Receiver()
    try:
        await subscribe(hooks, other.url, countries=["bel"])
        await hooks.post("/v1/incidents", json=expulsion(expelled="BE"))
        await hooks.post("/v1/incidents", json=sanctions_round())
        await hooks.post("/v1/incidents", json=expulsion())
        await until(lambda: len(receiver.received) == 1 and len(other.received) == 1)
        await asyncio.sleep(0.3)
        assert [e["type"] for e in receiver.events()] == ["sanctions_round.reported"]
        assert [e["data"]["expelled"] for e in other.events()] == ["BE"]
    finally:
        other.server.shutdown()
        other.server.server_close()


async def test_two_instances_deliver_each_event_once(
    dsn: str, hooks: Client, receiver: Receiver, admin_key: str
) -> None:
    second_app = create_app(
        Settings(database_url=dsn, webhook_allow_private=True, webhook_retry_scale=0.01)
    )
    async with AsyncTestClient(app=second_app) as second:
        authorised(second, admin_key)
        await subscribe(hooks, receiver.url)
        for n in range(10):
            target = hooks if n % 2 else second
            await target.post("/v1/incidents", json=expulsion(count=n + 1))
        await until(lambda: len(receiver.received) >= 10)
        await asyncio.sleep(0.5)
    assert [e["sequence"] for e in receiver.events()] == [str(n) for n in range(1, 11)]


async def test_subscriptions_can_be_listed_paused_resumed_and_deleted(
    hooks: Client, receiver: Receiver
) -> None:
    created = await subscribe(hooks, receiver.url, types=["incident.retracted"])
    url = f"/v1/subscriptions/{created['id']}"
    listed = (await hooks.get("/v1/subscriptions")).json()["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert all("secret" not in s for s in listed)
    paused = await hooks.patch(url, json={"active": False})
    assert paused.json()["active"] is False
    resumed = await hooks.patch(url, json={"active": True})
    assert resumed.json()["active"] is True
    assert (await hooks.delete(url)).status_code == 204
    assert (await hooks.get(url)).status_code == 404
    bad = await hooks.post("/v1/subscriptions", json={"url": receiver.url, "types": ["x.y"]})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hooks",
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://[::1]/hooks",
        "http://10.1.2.3/hooks",
        "http://172.16.0.1/hooks",
        "http://192.168.1.1/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hooks",
        "http://[fc00::1]/hooks",
        "http://0.0.0.0/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://100.100.100.200/latest/meta-data",
        "http://[64:ff9b::a00:1]/hooks",
        "http://[2002:7f00:1::]/hooks",
        "http://example.org:99999/hooks",
        "http://[::1/hooks",
    ],
)
async def test_webhook_urls_must_reach_public_addresses(client: Client, url: str) -> None:
    response = await client.post("/v1/subscriptions", json={"url": url})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "url"


async def test_retries_that_run_out_deactivate_the_subscription(
    hooks: Client, receiver: Receiver, dsn: str
) -> None:
    import asyncpg

    receiver.statuses = [500] * 50
    subscription = await subscribe(hooks, receiver.url)
    await hooks.post("/v1/incidents", json=expulsion())
    await until(lambda: len(receiver.received) >= 1)
    conn = await asyncpg.connect(dsn)
    try:  # as if it had been failing for more than three days
        await conn.execute(
            "UPDATE subscriptions SET failing_since = now() - interval '73 hours' WHERE id = $1",
            subscription["id"],
        )
    finally:
        await conn.close()
    url = f"/v1/subscriptions/{subscription['id']}"

    async def deactivated() -> bool:
        return not (await hooks.get(url)).json()["active"]

    async with asyncio.timeout(10):
        while not await deactivated():  # noqa: ASYNC110 - polls the HTTP API
            await asyncio.sleep(0.1)
    read = (await hooks.get(url)).json()
    assert read["deactivated_reason"] == "retries ran out after 3 days"
    assert read["position"] == 0


async def test_a_position_beyond_the_log_is_422_not_500(client: Client) -> None:
    response = await client.post(
        "/v1/subscriptions", json={"url": "https://example.org/h", "after": 2**63}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "after"
