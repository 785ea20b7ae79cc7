"""Who may call what: every route's scope, keys that are revoked, keys that are never stored."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.http.keys import revoke_key
from tests.conftest import make_key
from tests.domain.test_auth import routes

STREAMING = ("/v1/events/stream", "/v1/standings/stream")


async def call(client: AsyncTestClient[Any], method: str, path: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if method in ("POST", "PATCH"):
        headers["content-type"] = "application/json"
        response = await client.request(method, path, content=b"{}", headers=headers)
    else:
        response = await client.request(method, path, headers=headers)
    return response.status_code


async def test_every_scope_on_every_route(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn, public_reads=False, read_wait_seconds=0.1))
    keys = {scope: await make_key(dsn, (scope,)) for scope in ("read", "write", "subscribe")}
    keys["admin"] = await make_key(dsn, ("admin",))
    async with AsyncTestClient(app=app) as client:
        for method, path, needed in routes(app):
            anonymous = await call(client, method, path, None)
            if needed == "public":
                assert anonymous not in (401, 403), (method, path)
                continue
            assert anonymous == 401, (method, path)
            assert await call(client, method, path, "lg_not-a-key") == 401, (method, path)
            for scope, key in keys.items():
                allowed = scope in (needed, "admin")
                if allowed and path in STREAMING:
                    continue  # an allowed stream never ends; its 200 is tested elsewhere
                status = await call(client, method, path, key)
                if allowed:
                    assert status not in (401, 403), (method, path, scope, status)
                else:
                    assert status == 403, (method, path, scope, status)


async def test_reads_are_public_unless_configured_otherwise(
    client: AsyncTestClient[Any], dsn: str
) -> None:
    client.headers.pop("Authorization")
    assert (await client.get("/v1/events")).status_code == 200
    refused = await client.post("/v1/incidents", json={})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="legation"'
    assert refused.headers["content-type"] == "application/problem+json"
    reader = await make_key(dsn, ("read",))
    forbidden = await client.post(
        "/v1/incidents", json={}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]


async def test_a_revoked_key_is_refused(client: AsyncTestClient[Any], dsn: str) -> None:
    key = await make_key(dsn, ("write",), name="soon-gone")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.post("/v1/incidents", json={}, headers=headers)).status_code == 422
    conn = await asyncpg.connect(dsn)
    try:
        assert await revoke_key(conn, "soon-gone")
    finally:
        await conn.close()
    await asyncio.sleep(1.1)  # keys are remembered for at most a second
    assert (await client.post("/v1/incidents", json={}, headers=headers)).status_code == 401


async def test_callers_past_their_rate_get_429_with_retry_after(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn, rate_limit=1, rate_burst=3))
    async with AsyncTestClient(app=app) as client:
        statuses = [(await client.get("/v1/events")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        limited = await client.get("/v1/events")
        assert limited.headers["retry-after"] == "1"
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["status"] == 429
        # Sending a key does not lift the client's limit; health checks are never limited.
        keyed = await client.get("/v1/events", headers={"Authorization": "Bearer lg_x"})
        assert keyed.status_code == 429
        assert (await client.get("/health")).status_code == 200
        await asyncio.sleep(1.1)
        assert (await client.get("/v1/events")).status_code == 200
