"""Retractions, sources, an incident's events, and the other kinds over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.factories import expulsion, sanctions_round, territorial_control

Client = AsyncTestClient[Any]


async def reported(client: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/v1/incidents", json=body or expulsion())
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()
    return view


async def log_size(client: Client) -> int:
    return int((await client.get("/v1/events")).json()["last_position"])


async def test_every_kind_is_reported_and_read_back(client: Client) -> None:
    sanctions = await reported(client, sanctions_round(imposing="eu", target="rus"))
    assert (sanctions["kind"], sanctions["imposing"], sanctions["target"]) == (
        "sanctions_round",
        "EU",
        "RU",
    )
    assert sanctions["legal_acts"] == ["Council Regulation (EU) 2022/576"]
    town = await reported(client, territorial_control(controller="contested"))
    assert town["place"] == {
        "name": "Kreminna",
        "country": "UA",
        "region": "UA-09",
        "geonames_id": 704138,
    }
    assert town["controller"] == "contested"
    assert town["disputed"] is False
    read = await client.get(f"/v1/incidents/{town['id']}")
    assert read.json() == town


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (sanctions_round(target="EU"), "target"),
        (sanctions_round(measures=["cheese"]), "measures[0]"),
        (sanctions_round(round=0), "round"),
        (territorial_control(controller="XX"), "controller"),
        (territorial_control(place={"name": "Kreminna"}), "place.country"),
        (
            territorial_control(place={"name": "K", "country": "UA", "region": "UA-99"}),
            "place.region",
        ),
        (territorial_control(controller=None), "controller"),
    ],
)
async def test_invalid_reports_of_other_kinds_are_422(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert await log_size(client) == 0


async def test_a_retraction_keeps_the_incident_readable(client: Client) -> None:
    incident, original = await reported(client), await reported(client)
    url = f"/v1/incidents/{incident['id']}"
    response = await client.post(
        f"{url}/retraction",
        json={"note": "duplicate", "duplicate_of": original["id"]},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200
    view = response.json()
    assert (view["status"], view["version"]) == ("retracted", 2)
    assert view["retraction"]["note"] == "duplicate"
    assert view["retraction"]["duplicate_of"] == original["id"]
    assert (await client.get(url)).json() == view
    again = await client.post(f"{url}/retraction", json={})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    correction = await client.post(f"{url}/corrections", json={"changes": {"count": 2}})
    assert correction.status_code == 409
    assert await log_size(client) == 3


async def test_a_retraction_cannot_name_its_own_incident(client: Client) -> None:
    incident = await reported(client)
    response = await client.post(
        f"/v1/incidents/{incident['id']}/retraction", json={"duplicate_of": incident["id"]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "duplicate_of"


async def test_a_retraction_with_a_stale_if_match_is_412(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}"
    await client.post(f"{url}/sources", json={"outlet": "Reuters"})
    response = await client.post(f"{url}/retraction", json={}, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    assert (await client.get(url)).json()["status"] == "active"


async def test_a_source_is_added_once(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}/sources"
    source = {"outlet": "Reuters", "url": "https://www.reuters.com/world"}
    added = await client.post(url, json=source)
    assert added.status_code == 200
    assert [s["outlet"] for s in added.json()["sources"]] == ["AFP", "Reuters"]
    assert added.json()["version"] == 2
    again = await client.post(url, json=source)
    assert again.status_code == 200
    assert again.json()["version"] == 2
    bad = await client.post(url, json={"outlet": ""})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "outlet"
    assert await log_size(client) == 2


async def test_an_incident_lists_its_events_oldest_first(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}"
    await client.post(f"{url}/corrections", json={"changes": {"count": 3}, "note": "fewer"})
    await client.post(f"{url}/sources", json={"outlet": "Reuters"})
    await client.post(f"{url}/retraction", json={"note": "wrong country"})
    response = await client.get(f"{url}/events")
    assert response.status_code == 200
    events = response.json()["items"]
    assert [e["type"] for e in events] == [
        "expulsion.reported",
        "incident.corrected",
        "incident.source_added",
        "incident.retracted",
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert events[1]["data"]["changes"] == {"count": 3}
    assert response.headers["legation-position"] == str(events[-1]["position"])
    missing = await client.get(f"/v1/incidents/{uuid.uuid4()}/events")
    assert missing.status_code == 404


async def test_a_retried_retraction_with_its_key_answers_the_same(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}/retraction"
    headers = {"Idempotency-Key": "retract-1"}
    first = await client.post(url, json={"note": "gone"}, headers=headers)
    again = await client.post(url, json={"note": "gone"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await log_size(client) == 2


async def test_the_log_filters_lifecycle_events_by_country(client: Client) -> None:
    incident = await reported(client, expulsion(expelled="BE"))
    await client.post(
        f"/v1/incidents/{incident['id']}/corrections", json={"changes": {"expelled": "NL"}}
    )
    for_belgium = (await client.get("/v1/events?country=BE")).json()["items"]
    assert [e["type"] for e in for_belgium] == ["expulsion.reported", "incident.corrected"]
    for_netherlands = (await client.get("/v1/events?country=NL")).json()["items"]
    assert [e["type"] for e in for_netherlands] == ["incident.corrected"]


async def test_an_idempotency_key_reused_for_another_change_is_422(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}"
    headers = {"Idempotency-Key": "fix-count"}
    first = await client.post(
        f"{url}/corrections", json={"changes": {"count": 12}}, headers=headers
    )
    assert first.status_code == 200
    other = await client.post(
        f"{url}/corrections", json={"changes": {"count": 13}}, headers=headers
    )
    assert other.status_code == 422
    elsewhere = await client.post(f"{url}/retraction", json={}, headers=headers)
    assert elsewhere.status_code == 422
    assert await log_size(client) == 2


async def test_a_report_key_reused_for_a_correction_is_422(client: Client) -> None:
    created = await client.post("/v1/incidents", json=expulsion(), headers={"Idempotency-Key": "k"})
    url = f"/v1/incidents/{created.json()['id']}/corrections"
    reused = await client.post(
        url, json={"changes": {"count": 2}}, headers={"Idempotency-Key": "k"}
    )
    assert reused.status_code == 422
    assert await log_size(client) == 1


async def test_if_match_compares_strongly_and_accepts_a_list(client: Client) -> None:
    incident = await reported(client)
    url = f"/v1/incidents/{incident['id']}/corrections"
    weak = await client.post(url, json={"changes": {"count": 2}}, headers={"If-Match": 'W/"1"'})
    assert weak.status_code == 412
    listed = await client.post(
        url, json={"changes": {"count": 3}}, headers={"If-Match": '"7", "1"'}
    )
    assert listed.status_code == 200
    anything = await client.post(url, json={"changes": {"count": 4}}, headers={"If-Match": "*"})
    assert anything.json()["version"] == 3
