"""GET /v1/incidents: the incidents read model, filters, cursors and min_position."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import authorised
from tests.factories import expulsion, sanctions_round, territorial_control

Client = AsyncTestClient[Any]
NDJSON = {"content-type": "application/x-ndjson"}


async def seed(client: Client) -> tuple[list[str], int]:
    bodies = [
        expulsion(occurred_on="2022-04-05", expelling="EU", expelled="RU", count=19),
        expulsion(occurred_on="2022-04-15", expelling="RU", expelled="EU", count=18),
        sanctions_round(occurred_on="2022-04-08"),
        territorial_control(occurred_on="2022-04-19"),
        expulsion(occurred_on="2022-04-19", expelled="BE", count=21),
    ]
    content = b"\n".join(msgspec.json.encode(body) for body in bodies)
    response = await client.post("/v1/incidents:batch", content=content, headers=NDJSON)
    result = response.json()
    return [item["id"] for item in result["items"]], result["last_position"]


async def page(client: Client, **params: Any) -> Any:
    response = await client.get("/v1/incidents", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_incidents_are_listed_newest_first_once_projected(client: Client) -> None:
    ids, position = await seed(client)
    listed = await client.get("/v1/incidents", params={"min_position": position})
    assert int(listed.headers["legation-position"]) >= position
    body = listed.json()
    assert [item["occurred_on"] for item in body["items"]] == [
        "2022-04-19",
        "2022-04-19",
        "2022-04-15",
        "2022-04-08",
        "2022-04-05",
    ]
    assert {item["id"] for item in body["items"]} == set(ids)
    assert body["next_cursor"] is None


async def test_filters_narrow_the_list(client: Client) -> None:
    ids, position = await seed(client)
    wait: dict[str, Any] = {"min_position": position}
    by_country = await page(client, country="rus", **wait)
    assert len(by_country["items"]) == 5
    assert [i["id"] for i in (await page(client, country="BE", **wait))["items"]] == [ids[4]]
    assert [i["kind"] for i in (await page(client, kind="sanctions_round", **wait))["items"]] == [
        "sanctions_round"
    ]
    window = await page(client, since="2022-04-06", until="2022-04-15", **wait)
    assert [i["occurred_on"] for i in window["items"]] == ["2022-04-15", "2022-04-08"]
    retracted = await client.post(f"/v1/incidents/{ids[0]}/retraction", json={"note": "test"})
    wait = {"min_position": retracted.headers["legation-position"]}
    assert [i["id"] for i in (await page(client, status="retracted", **wait))["items"]] == [ids[0]]
    assert len((await page(client, status="active", **wait))["items"]) == 4


async def test_cursors_walk_every_incident_once(client: Client) -> None:
    ids, position = await seed(client)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "min_position": position}
    while True:
        body = await page(client, **params)
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)


async def test_corrections_reach_the_list(client: Client) -> None:
    ids, _ = await seed(client)
    corrected = await client.post(
        f"/v1/incidents/{ids[4]}/corrections", json={"changes": {"count": 12}, "note": "ministry"}
    )
    listed = await page(client, country="BE", min_position=corrected.headers["legation-position"])
    assert listed["items"][0]["count"] == 12
    assert listed["items"][0]["corrections"][0]["note"] == "ministry"


async def test_bad_list_queries_are_422(client: Client) -> None:
    for query, field in [
        ("country=XX", "country"),
        ("kind=coup", "kind"),
        ("since=2022-13-01", "since"),
        ("status=deleted", "status"),
        ("limit=0", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("min_position=-1", "min_position"),
    ]:
        response = await client.get(f"/v1/incidents?{query}")
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"] == field, query


async def test_a_position_not_reached_in_time_is_503_with_retry_after(
    dsn: str, admin_key: str
) -> None:
    # A separate-projector server with no `legation project` beside it: the log
    # grows, the read models never follow, so a position within the head waits.
    settings = Settings(database_url=dsn, read_wait_seconds=0.2, projector="separate")
    async with AsyncTestClient(app=create_app(settings)) as client:
        authorised(client, admin_key)
        appended = await client.post("/v1/incidents", json=expulsion())
        position = appended.headers["legation-position"]
        response = await client.get("/v1/incidents", params={"min_position": position})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/incidents", "min_position"),
        ("/v1/countries/RU", "min_position"),
        ("/v1/countries/RU/timeline", "known_at"),
        ("/v1/relations/RU/NL", "known_at"),
    ],
)
async def test_a_position_beyond_the_head_is_a_422_naming_it(
    client: Client, path: str, parameter: str
) -> None:
    _, last = await seed(client)
    # The default wait is 5 s; a position the log does not hold is refused at once.
    response = await client.get(path, params={parameter: last + 1})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": parameter, "message": f"is beyond the log's head ({last})"}
    ]
