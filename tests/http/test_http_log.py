"""The log and the operational endpoints over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.factories import expulsion

Client = AsyncTestClient[Any]


async def _fill(client: Client) -> None:
    for expelled in ("NL", "BE", "DE"):
        response = await client.post("/v1/incidents", json=expulsion(expelled=expelled))
        assert response.status_code == 201


async def test_the_log_pages_by_position(client: Client) -> None:
    await _fill(client)
    first = await client.get("/v1/events", params={"limit": 2})
    page = first.json()
    assert [e["position"] for e in page["items"]] == [1, 2]
    assert page["last_position"] == 3
    assert first.headers["legation-position"] == "3"
    event = page["items"][0]
    assert event["type"] == "expulsion.reported"
    assert event["version"] == 1
    assert event["stream"] == f"incident-{event['stream'].removeprefix('incident-')}"
    assert event["data"]["expelled"] == "NL"
    assert event["metadata"]["actor"] == "tests"  # the name of the key that wrote it
    second = (await client.get(page["next"])).json()
    assert [e["position"] for e in second["items"]] == [3]
    last = (await client.get(second["next"])).json()
    assert last["items"] == []
    assert last["next"] == second["next"]


async def test_the_log_filters_by_type_and_country(client: Client) -> None:
    await _fill(client)
    by_country = (await client.get("/v1/events", params={"country": "bel"})).json()
    assert [e["data"]["expelled"] for e in by_country["items"]] == ["BE"]
    assert by_country["last_position"] == 3
    assert "country=BE" in by_country["next"]
    by_type = (await client.get("/v1/events?type=incident.corrected")).json()
    assert by_type["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("type=expulsion.exploded", "type"),
        ("country=XX", "country"),
    ],
)
async def test_bad_log_queries_are_422_naming_the_parameter(
    client: Client, query: str, field: str
) -> None:
    response = await client.get(f"/v1/events?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["database"], body["migrations"]) == ("ok", "ok", "head")
    assert body["projector_lag"] == body["log_head"] - body["projected"] >= 0


async def test_readiness_is_503_when_migrations_are_behind(client: Client, dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    await conn.execute("UPDATE alembic_version SET version_num = 'older'")
    await conn.close()
    response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["migrations"] == "behind"


async def test_metrics_in_prometheus_text(client: Client) -> None:
    await _fill(client)
    await client.get("/v1/incidents/not-a-uuid")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'legation_http_requests_total{route="/v1/incidents",method="POST",status="201"} 3' in text
    )
    assert 'legation_http_request_duration_seconds_count{route="/v1/incidents"} 3' in text
    assert (
        'legation_http_request_duration_seconds_bucket{route="/v1/incidents",le="+Inf"} 3' in text
    )
    assert "legation_events_appended_total 3" in text
    assert "legation_log_head_position 3" in text
    assert "# TYPE legation_projector_lag_positions gauge" in text
    assert "legation_sse_clients 0" in text
    assert "legation_webhook_deliveries_total 0" in text


async def test_every_answer_carries_a_request_id_that_reaches_the_event(client: Client) -> None:
    given = await client.post(
        "/v1/incidents", json=expulsion(), headers={"X-Request-ID": "cms-req-42"}
    )
    assert given.headers["x-request-id"] == "cms-req-42"
    made = await client.get("/v1/events")
    assert made.headers["x-request-id"] != (await client.get("/health")).headers["x-request-id"]
    event = made.json()["items"][0]
    assert event["metadata"]["correlation_id"] == "cms-req-42"
    odd = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert odd.headers["x-request-id"] != "bad id with spaces"


async def test_an_answer_no_route_gave_carries_a_request_id_too(client: Client) -> None:
    # Routing refuses these: the edge, outside routing, gives them their id all the same.
    for method, path in (("GET", "/v1/incidents/not-a-uuid"), ("PUT", "/v1/incidents")):
        refused = await client.request(method, path, headers={"X-Request-ID": "cms-req-43"})
        assert refused.status_code in (404, 405)
        assert refused.headers.get_list("x-request-id") == ["cms-req-43"]
    unnamed = await client.get("/v1/nowhere")
    assert len(unnamed.headers["x-request-id"]) > 8
