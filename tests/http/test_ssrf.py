"""Webhook addresses over HTTP: refused at a subscription's creation (422) and at a delivery
(the URL is resolved again then).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.domain.test_ssrf import PUBLIC, REFUSED
from tests.factories import expulsion

Client = AsyncTestClient[Any]


def url(address: str, port: int = 80) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/hooks"


async def test_subscriptions_to_special_addresses_are_refused(client: Client) -> None:
    for address in REFUSED:
        response = await client.post("/v1/subscriptions", json={"url": url(address)})
        assert response.status_code == 422, address
        error = response.json()["errors"][0]
        assert error["field"] == "url"
        assert "not a public address" in error["message"], address


async def test_subscriptions_to_public_addresses_are_made(client: Client) -> None:
    for address in PUBLIC:
        response = await client.post("/v1/subscriptions", json={"url": url(address)})
        assert response.status_code == 201, (address, response.text)


async def test_deliveries_to_special_addresses_are_refused_when_resolved(
    client: Client, pool: asyncpg.Pool[Any]
) -> None:
    """Rows that slipped past creation (made before this check) are refused at delivery."""
    for address in REFUSED:
        await pool.execute(
            "INSERT INTO subscriptions (id, url, secret, position) VALUES (gen_random_uuid(), $1,"
            " 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 0)",
            url(address, 9),
        )
    client.app.state.deliverer.subscriptions_changed()
    assert (await client.post("/v1/incidents", json=expulsion())).status_code == 201
    query = (
        "SELECT s.url, d.status_code, d.error FROM deliveries d"
        " JOIN subscriptions s ON s.id = d.subscription_id WHERE d.attempt = 1"
    )
    async with asyncio.timeout(20):
        while len(rows := await pool.fetch(query)) < len(REFUSED):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert sorted(row["url"] for row in rows) == sorted(url(a, 9) for a in REFUSED)
    for row in rows:
        assert row["status_code"] is None
        assert "not a public address" in row["error"], row["url"]
