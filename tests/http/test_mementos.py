"""What did we say then: `known_at` as an instant, Accept-Datetime, and memento headers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.factories import expulsion

Client = AsyncTestClient[Any]
URL = "/v1/countries/RU"


def memento_url(link: str) -> str:
    found = re.search(r'<([^>]+)>; rel="memento"', link)
    assert found is not None, link
    return found.group(1)


async def publish_then_correct(client: Client) -> tuple[Any, datetime, int]:
    """RU expels 15; the live answer is read; then the count is corrected to 12.

    Returns the answer read before the correction, an instant between the two
    (whole seconds apart, for HTTP-dates) and the position of the first report.
    """
    posted = await client.post("/v1/incidents", json=expulsion(count=15))
    position = int(posted.headers["legation-position"])
    before = await client.get(URL, params={"min_position": position})
    await asyncio.sleep(1.1)
    between = datetime.now(UTC)
    await asyncio.sleep(1.1)
    url = f"/v1/incidents/{posted.json()['id']}/corrections"
    corrected = await client.post(url, json={"changes": {"count": 12}})
    after = int(corrected.headers["legation-position"])
    live = await client.get(URL, params={"min_position": after})
    assert live.json()["expulsions"]["expelled_foreign_diplomats"] == 12
    return before, between, position


async def test_a_memento_url_taken_before_a_correction_answers_the_old_figures(
    client: Client, pool: asyncpg.Pool[Any]
) -> None:
    before, _, position = await publish_then_correct(client)
    cited = memento_url(before.headers["link"])
    assert f"known_at={position}" in cited
    then = await client.get(cited)
    assert then.status_code == 200
    assert then.content == before.content  # byte for byte, after the correction
    assert then.json()["expulsions"]["expelled_foreign_diplomats"] == 15
    recorded = await pool.fetchval("SELECT recorded_at FROM events WHERE position = $1", position)
    assert then.headers["memento-datetime"] == format_datetime(recorded, usegmt=True)
    assert 'rel="memento"' not in then.headers.get("link", "")  # it is the memento


async def test_known_at_takes_an_instant_and_accept_datetime_means_the_same(
    client: Client,
) -> None:
    before, between, position = await publish_then_correct(client)
    instant = await client.get(URL, params={"known_at": between.isoformat()})
    assert instant.content == before.content
    assert instant.headers["legation-position"] == str(position)
    header = {"Accept-Datetime": format_datetime(between, usegmt=True)}
    for _ in range(2):  # the second would come from memory if the edge kept it by URL
        dated = await client.get(URL, headers=header)
        assert dated.content == before.content
        assert parsedate_to_datetime(dated.headers["memento-datetime"]) <= between
    earliest = await client.get(URL, params={"known_at": "2000-01-01T00:00:00Z"})
    assert earliest.headers["legation-position"] == "0"
    assert earliest.json()["expulsions"]["expelled_foreign_diplomats"] == 0


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"known_at": "yesterday"}, {}, "known_at"),
        ({"known_at": "2022-04-20T12:00:00"}, {}, "known_at"),  # no offset
        ({"known_at": "2022-04-20"}, {}, "known_at"),
        ({"known_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, {}, "known_at"),
        ({}, {"Accept-Datetime": "not a date"}, "Accept-Datetime"),
        ({}, {"Accept-Datetime": "Fri, 01 Jan 2100 00:00:00 GMT"}, "Accept-Datetime"),
    ],
)
async def test_a_malformed_or_future_instant_is_a_422_naming_it(
    client: Client, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    answer = await client.get(URL, params=params, headers=headers)
    assert answer.status_code == 422, answer.text
    assert [error["field"] for error in answer.json()["errors"]] == [field]


async def test_a_live_page_links_its_memento_beside_the_next_page(client: Client) -> None:
    for counterpart in ("NL", "BE", "FR"):
        await client.post("/v1/incidents", json=expulsion(expelled=counterpart))
    first = await client.get("/v1/countries", params={"limit": 1, "min_position": 3})
    links = first.headers["link"]
    assert 'rel="next"' in links
    assert "known_at=3" in memento_url(links)
