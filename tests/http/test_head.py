"""HEAD: every GET answers it with the GET's status and headers, and no body (RFC 9110).

The test client drops a HEAD's body itself: that none is sent, a real server shows.
"""

from __future__ import annotations

from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from tests.factories import expulsion
from tests.servers import serving

# Headers that differ between two answers to the same request.
PER_ANSWER = frozenset({"x-request-id", "date"})


def _headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in PER_ANSWER}


async def test_a_head_has_the_get_s_status_and_headers(client: AsyncTestClient[Any]) -> None:
    await client.post("/v1/incidents", json=expulsion(count=3))
    for url in ("/v1/countries/RU", "/v1/countries/RU", "/v1/events", "/health"):
        get = await client.get(url, headers={"Accept": "application/json"})
        head = await client.head(url, headers={"Accept": "application/json"})
        assert head.status_code == 200, url
        assert _headers(head) == _headers(get), url
        assert int(head.headers["content-length"]) == len(get.content) > 0, url


async def test_a_head_of_a_csv_is_the_csv_s(client: AsyncTestClient[Any]) -> None:
    await client.post("/v1/incidents", json=expulsion(count=3))
    csv = {"Accept": "text/csv"}
    get, head = (
        await client.get("/v1/countries", headers=csv),
        await client.head("/v1/countries", headers=csv),
    )
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/csv")
    assert int(head.headers["content-length"]) == len(get.content) > 0


async def test_a_head_is_refused_as_its_get_is(client: AsyncTestClient[Any]) -> None:
    for url in ("/v1/countries/XX", "/v1/incidents/00000000-0000-4000-8000-000000000000"):
        get, head = await client.get(url), await client.head(url)
        assert head.status_code == get.status_code >= 400, url
        assert (
            head.headers["content-type"]
            == get.headers["content-type"]
            == "application/problem+json"
        )
    only_posts = await client.head("/v1/incidents:batch")
    assert only_posts.status_code == 405
    assert "POST" in only_posts.headers["allow"]


async def test_allow_and_cors_name_head_beside_get(client: AsyncTestClient[Any]) -> None:
    not_here = await client.post("/v1/countries/RU", json={})
    assert not_here.status_code == 405
    assert {m.strip() for m in not_here.headers["allow"].split(",")} >= {"GET", "HEAD"}
    options = await client.options("/v1/countries/RU")
    assert {m.strip() for m in options.headers["allow"].split(",")} >= {"GET", "HEAD"}
    preflight = await client.options(
        "/v1/countries/RU",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "HEAD",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code in (200, 204), preflight.text
    assert "HEAD" in preflight.headers["access-control-allow-methods"]


async def test_a_head_of_the_stream_checks_its_parameters(client: AsyncTestClient[Any]) -> None:
    bad = await client.head("/v1/events/stream", params={"after": "-1"})
    assert bad.status_code == (await client.get("/v1/events", params={"after": "-1"})).status_code
    assert bad.status_code >= 400


def test_a_real_server_answers_head_with_the_get_s_length(dsn: str) -> None:
    with serving(dsn) as base, httpx.Client(base_url=base, timeout=5) as keep_alive:
        # Routed as a GET (nothing kept yet), then kept: the GET after it is replayed whole.
        first = keep_alive.head("/v1/countries/RU")
        get = keep_alive.get("/v1/countries/RU")
        assert first.status_code == get.status_code == 200
        assert first.headers["content-length"] == str(len(get.content)) != "0"
        assert get.json()["code"] == "RU"
        again = keep_alive.head("/v1/countries/RU")  # replayed from what the edge keeps
        assert again.headers["content-length"] == str(len(get.content))
        assert again.headers["etag"] == get.headers["etag"]
        stream = keep_alive.head("/v1/events/stream")
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        # The same connection answers next: no body was sent, and the stream was not followed.
        assert keep_alive.get("/health").json()["status"] == "ok"
        metrics = keep_alive.get("/metrics").text
    assert 'route="/v1/events/stream",method="HEAD",status="200"} 1' in metrics
    assert 'route="/v1/countries/{code}",method="HEAD",status="200"} 2' in metrics
