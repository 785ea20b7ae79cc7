"""GET /v1/blocs and /v1/blocs/{code}."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]


async def test_a_bloc_lists_every_member_with_its_days(client: Client) -> None:
    answer = await client.get("/v1/blocs/eu")
    assert answer.status_code == 200
    eu = answer.json()
    assert (eu["code"], eu["name"]) == ("EU", "European Union")
    members = {member["code"]: member for member in eu["members"]}
    assert members["GB"] == {
        "code": "GB",
        "name": "United Kingdom",
        "joined": "1973-01-01",
        "left": "2020-01-31",
    }
    assert members["HR"]["joined"] == "2013-07-01"
    assert members["HR"]["left"] is None
    assert "treaties" in eu["source"]


async def test_the_blocs_page_like_every_list(client: Client) -> None:
    first = await client.get("/v1/blocs", params={"limit": 1})
    assert [item["code"] for item in first.json()["items"]] == ["EU"]
    assert 'rel="next"' in first.headers["link"]
    cursor = first.json()["next_cursor"]
    second = await client.get("/v1/blocs", params={"limit": 1, "cursor": cursor})
    assert [item["code"] for item in second.json()["items"]] == ["NATO"]
    assert second.json()["next_cursor"] is None
    whole = await client.get("/v1/blocs")
    assert [item["code"] for item in whole.json()["items"]] == ["EU", "NATO"]


async def test_an_unknown_bloc_is_a_404_naming_the_blocs(client: Client) -> None:
    answer = await client.get("/v1/blocs/UN")
    assert answer.status_code == 404
    assert "EU, NATO" in answer.json()["detail"]
