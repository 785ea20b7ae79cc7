"""GET /v1/standings/stream, the `retry:` line, and stream tokens, through a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from tests.conftest import make_key
from tests.factories import expulsion
from tests.servers import serving

Raw = list[str]


@pytest.fixture
def server(dsn: str, admin_key: str) -> Iterator[str]:
    with serving(dsn, sse_heartbeat_seconds="0.3", rate_limit="0") as base:
        yield base


def report(base: str, key: str, **changes: Any) -> int:
    response = httpx.post(
        f"{base}/v1/incidents",
        json=expulsion(**changes),
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return int(response.headers["legation-position"])


async def opening(url: str, lines: int, headers: dict[str, str] | None = None) -> Raw:
    """The first `lines` lines of a stream."""
    got: Raw = []
    async with (
        httpx.AsyncClient(timeout=5) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            got.append(line)
            if len(got) == lines:
                break
    return got


async def notices(
    url: str, count: int, headers: dict[str, str] | None = None, within: float = 10
) -> list[tuple[str, Any]]:
    """The first `count` notifications of a standings stream: (id, data)."""
    got: list[tuple[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=within) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ident = event = ""
        async with asyncio.timeout(within):
            async for line in response.aiter_lines():
                name, _, value = line.partition(": ")
                if name == "id":
                    ident = value
                elif name == "event":
                    event = value
                elif name == "data":
                    assert event == "legation.standing.changed"
                    got.append((ident, msgspec.json.decode(value)))
                if len(got) == count:
                    break
    return got


async def test_both_streams_send_a_retry_line_first_then_heartbeats(server: str) -> None:
    for path in ("/v1/events/stream", "/v1/standings/stream"):
        lines = await opening(f"{server}{path}", 5)
        assert lines == ["retry: 2000", "", ": connected", "", ": heartbeat"]  # 0.3 s apart


async def test_the_standings_stream_catches_up_filters_and_resumes(
    server: str, admin_key: str
) -> None:
    one = report(server, admin_key)
    two = report(server, admin_key, expelled="BE", count=3)
    caught_up = await notices(f"{server}/v1/standings/stream?after=0", 4)
    assert [ident for ident, _ in caught_up] == [f"{one}/NL", f"{one}/RU", f"{two}/BE", f"{two}/RU"]
    async with httpx.AsyncClient(base_url=server) as client:
        for ident, frame in caught_up:
            position, code = ident.split("/")
            before = await client.get(f"/v1/countries/{code}?known_at={int(position) - 1}")
            after = await client.get(f"/v1/countries/{code}?known_at={position}")
            assert frame["before"] == before.json()
            assert frame["after"] == after.json()
            assert frame["country"] == code
    netherlands = await notices(f"{server}/v1/standings/stream?after=0&country=nld", 1)
    assert [ident for ident, _ in netherlands] == [f"{one}/NL"]
    resumed = await notices(
        f"{server}/v1/standings/stream", 2, headers={"Last-Event-ID": f"{one}/NL"}
    )
    assert [ident for ident, _ in resumed] == [f"{one}/RU", f"{two}/BE"]
    async with httpx.AsyncClient(base_url=server) as client:
        bad = await client.get("/v1/standings/stream?country=XX")
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "country"


async def test_the_standings_stream_follows_live_and_what_it_says_is_readable(
    server: str, admin_key: str
) -> None:
    report(server, admin_key)  # before the stream opens: not sent (it starts at the present)

    async def post_soon() -> int:
        await asyncio.sleep(0.5)
        return await asyncio.to_thread(report, server, admin_key, expelled="DE", count=4)

    posting = asyncio.create_task(post_soon())
    live = await notices(f"{server}/v1/standings/stream?country=DE", 1)
    position = await posting
    assert [ident for ident, _ in live] == [f"{position}/DE"]
    async with httpx.AsyncClient(base_url=server) as client:
        read = await client.get(f"/v1/countries/DE?min_position={position}")
    assert read.status_code == 200
    assert live[0][1]["after"] == read.json()


@pytest.fixture
def closed(dsn: str) -> Iterator[str]:
    with serving(dsn, public_reads="false", rate_limit="0") as base:
        yield base


async def test_a_stream_token_opens_streams_where_reads_need_a_key(closed: str, dsn: str) -> None:
    reader = await make_key(dsn, ("read",), name="browser-app")
    async with httpx.AsyncClient(base_url=closed, timeout=5) as client:
        made = await client.post("/v1/stream-tokens", headers={"Authorization": f"Bearer {reader}"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert (await client.get("/v1/events/stream")).status_code == 401
        # Only streams: as a key it is nothing, and other reads do not take it.
        as_bearer = await client.get("/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
        assert (await client.get("/v1/events", params={"token": token})).status_code == 401
    for path in ("/v1/events/stream", "/v1/standings/stream"):
        opened = await opening(f"{closed}{path}?token={token}", 1)
        assert opened == ["retry: 2000"]
