"""Live standings remembered at the edge, through the app."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.projections.answer_cache import Remembered
from tests.conftest import authorised
from tests.factories import expulsion


async def test_remembered_standings_follow_new_appends(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=dsn))
    async with AsyncTestClient(app=app) as client:
        authorised(client, admin_key)
        first = await client.post("/v1/incidents", json=expulsion(count=2))
        position = first.headers["legation-position"]
        url = "/v1/countries/RU"
        before = await client.get(url, params={"min_position": position})
        again = await client.get(url, params={"min_position": position})
        assert again.content == before.content
        assert again.headers["etag"] == before.headers["etag"]
        cors = await client.get(
            url, params={"min_position": position}, headers={"Origin": "https://example.org"}
        )
        assert cors.headers["access-control-allow-origin"] == "*"
        second = await client.post("/v1/incidents", json=expulsion(count=3))
        after = await client.get(url, params={"min_position": second.headers["legation-position"]})
        assert after.json()["expulsions"]["expelled_foreign_diplomats"] == 5
        assert before.json()["expulsions"]["expelled_foreign_diplomats"] == 2
        unchanged = await client.get(url, headers={"If-None-Match": after.headers["etag"]})
        assert unchanged.status_code == 304


async def test_a_remembered_read_still_needs_its_key(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=dsn, public_reads=False))
    async with AsyncTestClient(app=app) as client:
        keyed = {"Authorization": f"Bearer {admin_key}"}
        for _ in range(2):
            assert (await client.get("/v1/countries/RU", headers=keyed)).status_code == 200
        assert (await client.get("/v1/countries/RU")).status_code == 401


async def test_replayed_answers_are_measured_as_their_route(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn, rate_limit=1, rate_burst=50))
    async with AsyncTestClient(app=app) as client:
        for path in ("/v1/countries/RU", "/v1/countries/RU/", "/v1/countries/RU"):
            assert (await client.get(path)).status_code == 200  # the last two from memory
        await client.request("BREW", "/v1/countries/RU")
        # Exempt from the limit however the path is spelt, as routing reads it.
        for _ in range(60):
            assert (await client.get("/health/")).status_code == 200
        text = (await client.get("/metrics")).text
    route = 'route="/v1/countries/{code}"'
    assert f'legation_http_requests_total{{{route},method="GET",status="200"}} 3' in text
    assert f"legation_http_request_duration_seconds_count{{{route}}} 3" in text
    assert 'route="unmatched",method="GET"' not in text
    assert 'method="BREW"' not in text
    assert 'route="unmatched",method="OTHER"' in text


async def test_cross_origin_answers_are_kept_apart_with_their_cors_headers(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn))
    url, origin = "/v1/countries/RU", {"Origin": "https://newsroom.example"}
    async with AsyncTestClient(app=app) as client:
        plain = [await client.get(url) for _ in range(2)]
        cors = [await client.get(url, headers=origin) for _ in range(2)]
        other = await client.get(url, headers={"Origin": "https://other.example"})
        # A cookie makes the CORS layer name the origin: such answers are never kept.
        cookie = await client.get(url, headers={**origin, "Cookie": "a=b"})
    kept = app.state.answers
    assert isinstance(kept.get(("edge", url, b"", "json")), Remembered)
    assert isinstance(kept.get(("edge-cors", url, b"", "json")), Remembered)
    assert all("access-control-allow-origin" not in answer.headers for answer in plain)
    for answer in [*cors, other]:  # the second and the third from memory
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.content == plain[0].content
    assert cookie.headers["access-control-allow-origin"] == "https://newsroom.example"
    assert cookie.headers["vary"] == "Origin"


async def test_a_kept_answer_is_not_given_to_a_request_routing_refuses(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn))
    async with AsyncTestClient(app=app) as client:
        for _ in range(2):
            assert (await client.get("/v1/countries/RU")).status_code == 200
        refused = await client.get("/v1/countries/RU", headers={"Host": "bad host"})
    assert refused.status_code == 400
