"""Webhook addresses: every IPv4-carrying IPv6 form and every special-purpose block is refused.

Each address is tried where the service checks it: the address filter itself, a
subscription's creation (422) and a delivery (the URL is resolved again then).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service.subscribers.ssrf import forbidden
from tests.factories import expulsion

Client = AsyncTestClient[Any]

REFUSED = [
    "::127.0.0.1",  # IPv4-compatible loopback
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254 (cloud metadata)
    "::ffff:0:127.0.0.1",  # IPv4-translated loopback
    "::ffff:0:a9fe:a9fe",  # IPv4-translated metadata
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",  # IPv4-mapped private
    "64:ff9b::7f00:1",  # NAT64 of loopback
    "64:ff9b::a9fe:a9fe",  # NAT64 of metadata
    "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215)
    "64:ff9b:1:808:8:800::",  # local-use NAT64 even of 8.8.8.8
    "2002:7f00:1::",  # 6to4 of loopback
    "2002:a9fe:a9fe::1",  # 6to4 of metadata
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:808:808::1",  # Teredo even with a public server
    "fec0::1",  # site-local
    "fc00::1",  # unique local
    "fd12:3456::1",  # unique local
    "fe80::1",  # link-local
    "ff02::1",  # multicast, link
    "ff0e::1",  # multicast, global scope
    "::1",  # loopback
    "::",  # unspecified
    "100::1",  # discard-only
    "4000::1",  # outside global unicast
    "5f00::1",  # SRv6 SIDs
    "2001:db8::1",  # documentation
    "3fff::1",  # documentation (RFC 9637)
    "2001:2::1",  # benchmarking
    "2001:10::1",  # ORCHID
    "2001:20::1",  # ORCHIDv2
    "2001:3::1",  # AMT
    "2620:4f:8000::1",  # AS112
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "192.0.0.9",  # PCP anycast
    "192.0.2.1",  # documentation
    "192.88.99.1",  # 6to4 relay anycast
    "198.18.0.1",  # benchmarking
    "224.0.0.1",  # multicast
    "239.255.255.250",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


def url(address: str, port: int = 80) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/hooks"


@pytest.mark.parametrize("address", REFUSED)
def test_special_addresses_are_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden(ipaddress.ip_address(address))


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
