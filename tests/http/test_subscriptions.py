"""Subscriptions: owned by their key, capped per key, paged, and their secrets sealed at rest."""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from service.config import Settings
from service.subscribers.cloud_events import new_secret
from tests.conftest import authorised, make_key
from tests.db.test_runtime_role import as_runtime
from tests.factories import expulsion

Client = AsyncTestClient[Any]


class Receiver:
    """A loopback endpoint that records each delivery's headers and body and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while len(self.received) < count:  # noqa: ASYNC110 - the receiver is another thread
                await asyncio.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def settings(dsn: str, **changes: Any) -> Settings:
    """Webhooks may reach loopback (the receiver) in these tests."""
    return Settings(database_url=dsn, webhook_allow_private=True, **changes)


@pytest.fixture
async def app_client(dsn: str) -> AsyncIterator[Client]:
    """The app with no key of its own: each request names its key."""
    async with AsyncTestClient(app=create_app(settings(dsn))) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def subscribe(client: Client, key: str, url: str = "http://127.0.0.1:9/hooks") -> str:
    response = await client.post(
        "/v1/subscriptions", json={"url": url, "after": 0}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    made: str = response.json()["id"]
    return made


async def listed(client: Client, key: str) -> list[str]:
    response = await client.get("/v1/subscriptions", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- ownership -------------------------------------------------------------------------------


async def test_a_subscribe_key_sees_and_changes_only_its_own_subscriptions(
    app_client: Client, dsn: str, admin_key: str
) -> None:
    s1 = await make_key(dsn, ("subscribe",), name="s1")
    s2 = await make_key(dsn, ("subscribe",), name="s2")
    mine, theirs = await subscribe(app_client, s1), await subscribe(app_client, s2)
    assert await listed(app_client, s1) == [mine]
    assert await listed(app_client, s2) == [theirs]
    url = f"/v1/subscriptions/{mine}"
    as_s2 = bearer(s2)
    assert (await app_client.get(url, headers=as_s2)).status_code == 404
    assert (await app_client.get(f"{url}/deliveries", headers=as_s2)).status_code == 404
    paused = await app_client.patch(url, json={"active": False}, headers=as_s2)
    assert paused.status_code == 404
    assert (await app_client.delete(url, headers=as_s2)).status_code == 404
    # Untouched: still there and still active for its owner.
    own = await app_client.get(url, headers=bearer(s1))
    assert own.status_code == 200
    assert own.json()["active"] is True
    assert (await app_client.get(f"{url}/deliveries", headers=bearer(s1))).status_code == 200
    # admin sees and changes every one.
    assert sorted(await listed(app_client, admin_key)) == sorted([mine, theirs])
    as_admin = bearer(admin_key)
    paused = await app_client.patch(url, json={"active": False}, headers=as_admin)
    assert paused.json()["active"] is False
    assert (await app_client.delete(url, headers=as_admin)).status_code == 204
    assert (await app_client.get(url, headers=bearer(s1))).status_code == 404


async def test_subscriptions_from_before_owners_are_seen_by_admin_only(
    app_client: Client, dsn: str, admin_key: str, pool: asyncpg.Pool[Any]
) -> None:
    old = uuid.uuid4()
    await pool.execute(
        "INSERT INTO subscriptions (id, url, secret, position) VALUES ($1, $2, $3, 0)",
        old,
        "https://example.org/old",
        new_secret(),
    )
    s1 = await make_key(dsn, ("subscribe",), name="s1")
    assert await listed(app_client, s1) == []
    assert (await app_client.get(f"/v1/subscriptions/{old}", headers=bearer(s1))).status_code == 404
    assert await listed(app_client, admin_key) == [str(old)]


async def test_owners_hold_under_the_runtime_role(dsn: str) -> None:
    key = await make_key(dsn, ("subscribe",), name="s1")
    app = create_app(settings(as_runtime(dsn)))
    async with AsyncTestClient(app=app) as client:
        made = await subscribe(client, key)
        assert await listed(client, key) == [made]
        assert (await client.delete(f"/v1/subscriptions/{made}", headers=bearer(key))).is_success


# --- the cap per key -------------------------------------------------------------------------


async def test_a_key_may_hold_at_most_the_configured_number_of_subscriptions(dsn: str) -> None:
    s1 = await make_key(dsn, ("subscribe",), name="s1")
    s2 = await make_key(dsn, ("subscribe",), name="s2")
    async with AsyncTestClient(app=create_app(settings(dsn, max_subscriptions_per_key=2))) as c:
        first = await subscribe(c, s1)
        await subscribe(c, s1)
        refused = await c.post(
            "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hooks"}, headers=bearer(s1)
        )
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:legation:problem:subscription-limit"
        assert "LEGATION_MAX_SUBSCRIPTIONS_PER_KEY=2" in problem["detail"]
        await subscribe(c, s2)  # the cap is per key
        assert (await c.delete(f"/v1/subscriptions/{first}", headers=bearer(s1))).is_success
        await subscribe(c, s1)  # room again


# --- paging ----------------------------------------------------------------------------------


async def test_the_list_is_paged_with_cursors_and_link_headers(
    app_client: Client, admin_key: str
) -> None:
    client = authorised(app_client, admin_key)
    made = [await subscribe(client, admin_key) for _ in range(5)]
    seen: list[str] = []
    url: str | None = "/v1/subscriptions?limit=2"
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        link = response.headers.get("link")
        if page["next_cursor"] is None:
            assert link is None
            url = None
        else:
            assert link is not None
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
            assert "limit=2" in url
            assert f"cursor={page['next_cursor']}" in url
    assert pages == 3
    assert seen == made  # oldest first, each once
    assert len((await client.get("/v1/subscriptions")).json()["items"]) == 5  # default 50


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("cursor=bm90LWEtY3Vyc29y", "cursor")],
)
async def test_bad_list_queries_are_422(client: Client, query: str, field: str) -> None:
    response = await client.get(f"/v1/subscriptions?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


# --- secrets at rest -------------------------------------------------------------------------


async def stored_secret(pool: asyncpg.Pool[Any], subscription: str) -> str:
    stored: str = await pool.fetchval(
        "SELECT secret FROM subscriptions WHERE id = $1", uuid.UUID(subscription)
    )
    return stored


def assert_not_in_clear(stored: str, secret: str) -> None:
    raw = secret.removeprefix("whsec_")
    assert raw not in stored
    assert base64.b64decode(raw).hex() not in stored
    assert stored.startswith("aesgcm1:")


async def test_secrets_are_stored_sealed_and_deliveries_still_verify(
    dsn: str, admin_key: str, pool: asyncpg.Pool[Any], receiver: Receiver
) -> None:
    async with AsyncTestClient(app=create_app(settings(dsn))) as client:
        authorised(client, admin_key)
        created = await client.post("/v1/subscriptions", json={"url": receiver.url, "after": 0})
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        assert_not_in_clear(await stored_secret(pool, created.json()["id"]), secret)
        await client.post("/v1/incidents", json=expulsion())
        await receiver.wait_for(1)
    headers, body = receiver.received[0]
    Webhook(secret).verify(body, headers)  # raises unless signed with the secret shown


async def test_secrets_stored_in_clear_are_sealed_at_start_up(
    dsn: str, admin_key: str, pool: asyncpg.Pool[Any], receiver: Receiver
) -> None:
    secret, old = new_secret(), uuid.uuid4()
    await pool.execute(
        "INSERT INTO subscriptions (id, url, secret, position) VALUES ($1, $2, $3, 0)",
        old,
        receiver.url,
        secret,
    )
    # The runtime role may seal them too (UPDATE on subscriptions).
    async with AsyncTestClient(app=create_app(settings(as_runtime(dsn)))) as client:
        assert_not_in_clear(await stored_secret(pool, str(old)), secret)
        authorised(client, admin_key)
        await client.post("/v1/incidents", json=expulsion())
        await receiver.wait_for(1)
    headers, body = receiver.received[0]
    Webhook(secret).verify(body, headers)


async def test_deliveries_carry_a_next_link_too(
    app_client: Client, admin_key: str, pool: asyncpg.Pool[Any]
) -> None:
    made = await subscribe(app_client, admin_key)
    await pool.execute(
        "INSERT INTO deliveries (subscription_id, event_id, position, attempt, latency_ms)"
        " SELECT $1, gen_random_uuid(), n, 1, 5 FROM generate_series(1, 3) n",
        uuid.UUID(made),
    )
    url = f"/v1/subscriptions/{made}/deliveries?limit=2"
    first = await app_client.get(url, headers=bearer(admin_key))
    cursor = first.json()["next_cursor"]
    assert (
        first.headers["link"]
        == f'</v1/subscriptions/{made}/deliveries?limit=2&cursor={cursor}>; rel="next"'
    )
    last = await app_client.get(f"{url}&cursor={cursor}", headers=bearer(admin_key))
    assert [d["position"] for d in last.json()["items"]] == [1]
    assert "link" not in last.headers
