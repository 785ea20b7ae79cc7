"""Incidents over HTTP: report, correct, read, and every error status."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import authorised
from tests.factories import expulsion

Client = AsyncTestClient[Any]


async def log_size(client: Client) -> int:
    response = await client.get("/v1/events")
    return int(response.json()["last_position"])


async def report(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return await client.post("/v1/incidents", json=body, headers=headers)


async def test_reporting_an_expulsion(client: Client) -> None:
    response = await report(client, expulsion(expelling="rus", expelled="nld"))
    assert response.status_code == 201
    view = response.json()
    assert response.headers["location"] == f"/v1/incidents/{view['id']}"
    assert response.headers["etag"] == '"1"'
    assert response.headers["legation-position"] == "1"
    assert (view["expelling"], view["expelled"], view["count"]) == ("RU", "NL", 15)
    assert (view["status"], view["disputed"], view["version"]) == ("active", False, 1)
    assert view["sources"][0]["outlet"] == "AFP"
    assert view["corrections"] == []
    read = await client.get(f"/v1/incidents/{view['id']}")
    assert read.json() == view
    assert read.headers["etag"] == '"1"'


async def test_a_count_range_makes_the_incident_disputed(client: Client) -> None:
    response = await report(client, expulsion(count=21, count_range=[12, 21]))
    assert response.status_code == 201
    assert response.json()["disputed"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (expulsion(count=0), "count"),
        (expulsion(count="15"), "count"),
        (expulsion(extra="x"), "extra"),
        (expulsion(occurred_on="2022-02-30"), "occurred_on"),
        (expulsion(expelling="XX"), "expelling"),
        (expulsion(expelling="NL"), "expelled"),
        (expulsion(count_range=[16, 20]), "count_range"),
        (expulsion(sources=[]), "sources"),
        (expulsion(sources=[{"url": "https://example.org"}]), "sources[0].outlet"),
        (expulsion(kind="coup"), "kind"),
        (expulsion(count_range=[21, 12]), "count_range"),
        (expulsion(count_range=[0, None]), "count_range[0]"),
        (expulsion(joint_expelling=["RU"]), "joint_expelling[0]"),
        (expulsion(joint_expelling=["FR"], joint_expelled=["FR"]), "joint_expelled[0]"),
        (expulsion(joint_expelled=["XX"]), "joint_expelled[0]"),
        ([expulsion()], "body"),
    ],
)
async def test_invalid_reports_are_422_naming_the_field(
    client: Client, body: Any, field: str
) -> None:
    response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"]
    assert problem["detail"]
    assert [error["field"] for error in problem["errors"]] == [field]
    assert await log_size(client) == 0


async def test_malformed_json_is_400_and_appends_nothing(client: Client) -> None:
    response = await client.post(
        "/v1/incidents",
        content=b'{"kind": "expulsion",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("malformed-json")
    assert await log_size(client) == 0


async def test_a_body_that_is_not_json_is_415(client: Client) -> None:
    response = await client.post(
        "/v1/incidents",
        content=b"count=15",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_idempotent_retry_returns_the_original_response(client: Client) -> None:
    first = await report(client, expulsion(), **{"Idempotency-Key": "cms-42"})
    await report(client, expulsion(expelled="BE"))
    again = await report(client, expulsion(), **{"Idempotency-Key": "cms-42"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["legation-position"] == first.headers["legation-position"] == "1"
    assert again.headers["location"] == first.headers["location"]
    assert await log_size(client) == 2


async def test_an_idempotency_key_reused_with_another_body_is_422(client: Client) -> None:
    await report(client, expulsion(), **{"Idempotency-Key": "cms-43"})
    response = await report(client, expulsion(count=16), **{"Idempotency-Key": "cms-43"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert await log_size(client) == 1


async def test_concurrent_requests_with_one_key_record_one_incident(client: Client) -> None:
    responses = await asyncio.gather(
        *(report(client, expulsion(), **{"Idempotency-Key": "burst"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await log_size(client) == 1


async def test_a_client_chosen_id_makes_a_retry_idempotent(client: Client) -> None:
    incident_id = str(uuid.uuid4())
    first = await report(client, expulsion(id=incident_id))
    again = await report(client, expulsion(id=incident_id))
    other = await report(client, expulsion(id=incident_id, count=3))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] == incident_id
    assert other.status_code == 409
    assert await log_size(client) == 1


async def _reported(client: Client, **changes: Any) -> dict[str, Any]:
    response = await report(client, expulsion(**changes))
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def test_a_correction_applies_and_is_listed_with_its_note(client: Client) -> None:
    incident = await _reported(client, count=21)
    url = f"/v1/incidents/{incident['id']}/corrections"
    response = await client.post(
        url,
        json={"changes": {"count": 12}, "note": "Belgian ministry says 12"},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200
    view = response.json()
    assert (view["count"], view["version"]) == (12, 2)
    assert response.headers["etag"] == '"2"'
    assert response.headers["legation-position"] == "2"
    assert view["corrections"][0]["note"] == "Belgian ministry says 12"
    assert view["corrections"][0]["changes"] == {"count": 12}
    assert (await client.get(f"/v1/incidents/{incident['id']}")).json() == view


async def test_a_correction_with_a_stale_if_match_is_412(client: Client) -> None:
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}/corrections"
    await client.post(url, json={"changes": {"count": 14}})
    response = await client.post(url, json={"changes": {"count": 13}}, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    assert response.json()["current_version"] == 2
    assert await log_size(client) == 2


async def test_a_correction_is_validated_as_a_whole_incident(client: Client) -> None:
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}/corrections"
    for changes, field in [
        ({"count": 0}, "changes.count"),
        ({"expelled": "RU"}, "changes.expelled"),
        ({"colour": "red"}, "changes.colour"),
    ]:
        response = await client.post(url, json={"changes": changes})
        assert response.status_code == 422, changes
        assert response.json()["errors"][0]["field"] == field
    assert (await client.post(url, json={"changes": {}})).status_code == 422
    assert await log_size(client) == 1


async def test_a_retried_correction_with_its_key_applies_once(client: Client) -> None:
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}/corrections"
    body, headers = {"changes": {"count": 9}}, {"Idempotency-Key": "fix-1", "If-Match": '"1"'}
    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await log_size(client) == 2


async def test_correcting_an_unknown_incident_is_404(client: Client) -> None:
    response = await client.post(
        f"/v1/incidents/{uuid.uuid4()}/corrections", json={"changes": {"count": 2}}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_malformed_if_match_is_422(client: Client) -> None:
    incident = await _reported(client)
    response = await client.post(
        f"/v1/incidents/{incident['id']}/corrections",
        json={"changes": {"count": 2}},
        headers={"If-Match": "version one"},
    )
    assert response.status_code == 422
    assert "If-Match" in response.text


async def test_reading_with_a_matching_etag_is_304(client: Client) -> None:
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}"
    assert (await client.get(url, headers={"If-None-Match": '"1"'})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": '"7"'})).status_code == 200


async def test_unknown_incidents_and_routes_are_404_problems(client: Client) -> None:
    for url in (f"/v1/incidents/{uuid.uuid4()}", "/v1/nothing-here", "/v1/incidents/not-a-uuid"):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404


async def test_a_body_over_the_limit_is_413(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=dsn, max_body_bytes=2048))
    async with AsyncTestClient(app=app) as small:
        authorised(small, admin_key)
        big = expulsion(summary="x" * 3000)
        response = await small.post("/v1/incidents", json=big)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert (await small.post("/v1/incidents", json=expulsion())).status_code == 201


async def test_a_nul_character_is_422_not_500(client: Client) -> None:
    response = await report(client, expulsion(summary="a\u0000b"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "summary"
    assert await log_size(client) == 0


NUL_URL = "https://a.example/\u0000x"


async def test_a_nul_character_anywhere_is_422_naming_the_field(client: Client) -> None:
    reported = await report(client, expulsion(sources=[{"outlet": "AFP", "url": NUL_URL}]))
    assert reported.status_code == 422
    assert reported.json()["errors"] == [
        {"field": "sources[0].url", "message": "must not contain the NUL character (\\u0000)"}
    ]
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}"
    cited = await client.post(f"{url}/sources", json={"outlet": "AFP", "url": NUL_URL})
    assert cited.status_code == 422
    assert cited.json()["errors"][0]["field"] == "url"
    for changes, field in [
        ({"count\u0000": 3}, "changes"),
        (
            {"sources": [{"outlet": "AFP"}, {"outlet": "x", "url": NUL_URL}]},
            "changes.sources[1].url",
        ),
    ]:
        corrected = await client.post(f"{url}/corrections", json={"changes": changes})
        assert corrected.status_code == 422, changes
        assert corrected.json()["errors"][0]["field"] == field
    assert await log_size(client) == 1


async def test_a_correction_naming_a_field_its_kind_lacks_is_422(client: Client) -> None:
    incident = await _reported(client)
    url = f"/v1/incidents/{incident['id']}/corrections"
    for changes, field in [
        ({"bogus": None}, "changes.bogus"),
        ({"count": 3, "bogus": None}, "changes.bogus"),
        # The kind it becomes decides: a sanctions round has no count to remove.
        (
            {"kind": "sanctions_round", "imposing": "EU", "target": "RU", "count": None},
            "changes.count",
        ),
        ({"kind": []}, "changes.kind"),
    ]:
        response = await client.post(url, json={"changes": changes})
        assert response.status_code == 422, changes
        assert response.json()["errors"][0]["field"] == field
    assert await log_size(client) == 1
    changed = {"kind": "sanctions_round", "imposing": "EU", "target": "RU"}
    response = await client.post(url, json={"changes": changed})
    assert response.status_code == 200
    assert (response.json()["kind"], response.json()["target"]) == ("sanctions_round", "RU")


async def test_deeply_nested_json_is_422_not_500(client: Client) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    headers = {"content-type": "application/json"}
    body = b'{"kind": "expulsion", "summary": ' + deep + b"}"
    response = await client.post("/v1/incidents", content=body, headers=headers)
    assert response.status_code in (400, 422)
    incident = (await report(client, expulsion())).json()
    correction = b'{"changes": {"count": ' + deep + b"}}"
    url = f"/v1/incidents/{incident['id']}/corrections"
    response = await client.post(url, content=correction, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"field": "body", "message": "is nested too deeply"}
    batch = await client.post(
        "/v1/incidents:batch", content=correction, headers={"content-type": "application/x-ndjson"}
    )
    assert batch.status_code == 422
    assert await log_size(client) == 1
