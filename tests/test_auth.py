"""Who may call what: every route's scope, keys that are revoked, keys that are never stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.http.keys import revoke_key
from service.http.route_meta import SCOPES, meta_of
from tests.conftest import make_key
from tests.servers import serving

STREAMING = "/v1/events/stream"
INCIDENT, SUBSCRIPTION = uuid.uuid4(), uuid.uuid4()


def routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, concrete path, scope) for every route of ours."""
    found: list[tuple[str, str, str]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith("/schema"):
                continue  # the docs and the OpenAPI document are public
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's own OPTIONS answers
            meta = meta_of(handler)
            assert meta is not None, f"{route.path} has no auth decision"
            assert meta.scope in SCOPES
            scope = meta.scope
            path = (
                route.path_format.replace("{incident_id}", str(INCIDENT))
                .replace("{subscription_id}", str(SUBSCRIPTION))
                .replace("{code}", "RU")
                .replace("{counterpart}", "EU")
            )
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                found.append((method, path, scope))
    return found


def test_every_route_has_an_auth_decision() -> None:
    table = routes(create_app(Settings(database_url="postgresql://unused@localhost/x")))
    assert len(table) >= 25
    assert ("POST", "/v1/incidents", "write") in table
    assert ("GET", "/v1/subscriptions", "subscribe") in table


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
                if allowed and path == STREAMING:
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


async def test_only_a_keyed_hash_of_a_key_is_stored(dsn: str, pool: asyncpg.Pool[Any]) -> None:
    key = await make_key(dsn, ("write",), name="secretive")
    dump = await pool.fetch(
        "SELECT row_to_json(k)::text FROM api_keys k"
        " UNION ALL SELECT encode(key_hash, 'escape') FROM api_keys"
        " UNION ALL SELECT encode(key_hash, 'hex') FROM api_keys"
    )
    assert dump
    assert all(key not in row[0] and key.removeprefix("lg_") not in row[0] for row in dump)


@pytest.mark.parametrize("scopes", ["", "read,fly", "everything"])
async def test_unknown_scopes_are_refused(scopes: str) -> None:
    from service.http.keys import InvalidKeyRequest, parse_scopes

    with pytest.raises(InvalidKeyRequest):
        parse_scopes(scopes)


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


def test_the_rate_limit_is_on_by_default() -> None:
    from service.config import settings_from_env

    settings = settings_from_env({})
    assert (settings.rate_limit, settings.rate_burst) == (50, 200)
    assert settings_from_env({"LEGATION_RATE_LIMIT": "0"}).rate_limit == 0


def forwarded_statuses(base: str, forwarded_for: list[str]) -> list[int]:
    """The statuses of one GET per X-Forwarded-For value, in order."""
    with httpx.Client(base_url=base, timeout=10) as http:
        return [
            http.get("/v1/events", headers={"X-Forwarded-For": value}).status_code
            for value in forwarded_for
        ]


def test_x_forwarded_for_from_an_untrusted_peer_does_not_lift_the_limit(dsn: str) -> None:
    with serving(dsn, rate_limit="1", rate_burst="3") as base:
        statuses = forwarded_statuses(base, [f"203.0.113.{n}" for n in range(20)])
    # All from 127.0.0.1 as far as the server knows: 3 pass, then about one a second.
    assert statuses[:3] == [200, 200, 200]
    assert statuses.count(429) >= 10


def test_a_trusted_proxy_gives_each_forwarded_client_its_own_bucket(dsn: str) -> None:
    with serving(
        dsn, rate_limit="1", rate_burst="3", trusted_proxies="127.0.0.0/8, 10.0.0.0/8"
    ) as base:
        distinct = forwarded_statuses(base, [f"203.0.113.{n}" for n in range(20)])
        # Behind a chain of trusted proxies the right-most untrusted address is the
        # client: what it put left of itself is its own say-so and changes nothing.
        chained = forwarded_statuses(
            base, [f"192.0.2.{n}, 198.51.100.7, 10.1.1.1" for n in range(20)]
        )
    assert distinct == [200] * 20
    assert chained[:3] == [200, 200, 200]
    assert chained.count(429) >= 10
