"""Standings lists page like every list: `limit`, `cursor`, `next_cursor`, `Link: rel="next"`."""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests.factories import expulsion, sanctions_round, territorial_control

Client = AsyncTestClient[Any]
NDJSON = {"content-type": "application/x-ndjson"}
LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')
COUNTERPARTS = ["NL", "BE", "FR", "DE", "PL", "EE", "LV"]


async def batch(client: Client, bodies: list[dict[str, Any]]) -> int:
    content = b"\n".join(msgspec.json.encode(body) for body in bodies)
    response = await client.post("/v1/incidents:batch", content=content, headers=NDJSON)
    assert response.status_code == 201, response.text
    position: int = response.json()["last_position"]
    return position


def seed_bodies() -> list[dict[str, Any]]:
    """RU against seven counterparts, two on each date (ties in the timeline's date order)."""
    bodies = []
    for i, counterpart in enumerate(COUNTERPARTS):
        day = f"2022-04-{10 + i // 2:02d}"
        bodies.append(expulsion(occurred_on=day, expelled=counterpart, count=i + 1))
        bodies.append(sanctions_round(occurred_on=day, imposing=counterpart, round=i + 1))
    for i, name in enumerate(["Kreminna", "Izium", "Kupiansk", "Lyman", "Bakhmut"]):
        place = {"name": name, "country": "UA", "region": "UA-14"}
        bodies.append(territorial_control(occurred_on=f"2022-05-0{i + 1}", place=place))
    return bodies


async def every_page(client: Client, url: str, **params: Any) -> list[Any]:
    """Each page's body, following Link: rel="next"; checks the Link and next_cursor agree."""
    pages = []
    response = await client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        # The first page, read live, also links its memento (rel="memento").
        links = {rel: url for url, rel in LINK.findall(response.headers.get("link", ""))}
        if page["next_cursor"] is None:
            assert "next" not in links
            return pages
        assert "next" in links, response.headers.get("link")
        assert f"cursor={page['next_cursor']}" in links["next"]
        response = await client.get(links["next"])


@pytest.mark.parametrize(
    ("url", "field", "count"),
    [
        ("/v1/countries/RU/timeline", "items", 19),
        ("/v1/countries/RU/relations", "items", 8),  # seven counterparts and UA
        ("/v1/relations/RU/NL", "incidents", 2),
        ("/v1/territories", "items", 5),
        ("/v1/countries", "items", 9),
    ],
)
async def test_pages_hold_the_whole_list_once_in_order(
    client: Client, url: str, field: str, count: int
) -> None:
    position = await batch(client, seed_bodies())
    whole = (await client.get(url, params={"limit": 500, "min_position": position})).json()
    assert len(whole[field]) == count
    assert whole["next_cursor"] is None
    pages = await every_page(client, url, limit=2)
    assert [len(page[field]) for page in pages[:-1]] == [2] * (len(pages) - 1)
    assert [item for page in pages for item in page[field]] == whole[field]


async def test_the_default_page_holds_fifty(client: Client) -> None:
    position = await batch(client, [expulsion(count=i + 1) for i in range(60)])
    page = (await client.get("/v1/countries/RU/timeline", params={"min_position": position})).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None


async def test_countries_page_in_their_sort_order(client: Client) -> None:
    position = await batch(client, seed_bodies())
    params: dict[str, Any] = {"sort": "balance", "limit": 500, "min_position": position}
    whole = (await client.get("/v1/countries", params=params)).json()
    pages = await every_page(client, "/v1/countries", sort="balance", limit=3)
    assert [item["code"] for page in pages for item in page["items"]] == [
        item["code"] for item in whole["items"]
    ]


async def test_later_pages_answer_at_the_first_pages_position(client: Client) -> None:
    position = await batch(client, seed_bodies())
    first = await client.get(
        "/v1/countries/RU/timeline", params={"limit": 5, "min_position": position}
    )
    # A newer incident lands at the top of the timeline between two pages.
    await batch(client, [expulsion(occurred_on="2023-01-01", deadline=None)])
    pages = [first.json()]
    cursor = first.json()["next_cursor"]
    while cursor is not None:
        response = await client.get(
            "/v1/countries/RU/timeline", params={"limit": 5, "cursor": cursor}
        )
        assert response.headers["legation-position"] == str(position)
        pages.append(response.json())
        cursor = response.json()["next_cursor"]
    ids = [item["id"] for page in pages for item in page["items"]]
    assert len(ids) == len(set(ids)) == 19


async def test_as_of_and_known_at_hold_across_pages(client: Client) -> None:
    early = await batch(client, seed_bodies()[:6])
    await batch(client, seed_bodies()[6:])
    pages = await every_page(
        client, "/v1/countries/RU/timeline", limit=2, as_of="2022-04-10", known_at=early
    )
    items = [item for page in pages for item in page["items"]]
    # The first six reports cover 10-11 April; as_of keeps the four of the 10th.
    assert [item["occurred_on"] for item in items] == ["2022-04-10"] * 4
    assert all(page["position"] == early for page in pages)


FORGED = base64.urlsafe_b64encode(
    msgspec.json.encode([-1, "2022-04-10", 1, "00000000-0000-0000-0000-000000000000"])
).decode()


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"cursor": "bm90IGEgY3Vyc29y"}, {"cursor": FORGED}]
)
async def test_a_bad_limit_or_cursor_is_a_422_naming_it(
    client: Client, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/countries/RU/timeline", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in response.text
