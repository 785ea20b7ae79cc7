"""The embeddable pages and the front page, in-process: words, notes, escaping, the CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.seed import BELGIUM, post_seed

Client = AsyncTestClient[Any]
HOSTILE = '"><script>alert(1)</script>'


@pytest.fixture
async def seeded(client: Client) -> int:
    return await post_seed(client)


def inline_hash(page: str, tag: str) -> str:
    [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return f"'sha256-{digest}'"


@pytest.mark.parametrize("url", ["/embed/relations/RU/BE", "/embed/countries/RU", "/"])
async def test_each_page_allows_only_its_own_inline_script_and_style(
    client: Client, seeded: int, url: str
) -> None:
    answer = await client.get(url, params={"min_position": seeded})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in answer.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == inline_hash(answer.text, "script")
    assert policy["style-src"] == inline_hash(answer.text, "style")
    assert "unsafe" not in answer.headers["content-security-policy"]
    assert "http" not in answer.text.split("<body>")[1].split("<script>")[0].replace(
        "http://www.w3.org", ""
    ), "nothing is loaded from elsewhere"


async def test_the_embed_says_the_figures_and_their_ranges_in_words(
    client: Client, seeded: int
) -> None:
    params: dict[str, str | int] = {"members": "true", "min_position": seeded}
    page = (await client.get("/embed/relations/EU/RU", params=params)).text
    assert (
        '<p class="figure">Russian Federation has expelled 54 diplomats of the EU side '
        "(45 to 54: Belgium&#x27;s count is disputed).</p>"
    ) in page
    assert "The EU side has expelled 94 diplomats of Russian Federation (at least 94: 3 " in page
    assert "Italy expelled diplomats of Russian Federation; the report gives no number" in page
    assert "the count is disputed: 21 (the sources give 12 to 21)." in page
    assert '<table class="visually-hidden"><caption>The incidents behind the chart' in page
    assert '<svg role="img" aria-label="Chart: Diplomats expelled: the EU side and' in page
    assert 'data-live="true"' in page
    assert f'href="/embed/relations/EU/RU?members=true&amp;known_at={seeded}"' in page


async def test_what_reports_say_is_escaped_and_corrections_are_noted(
    client: Client, seeded: int
) -> None:
    await client.post(
        f"/v1/incidents/{BELGIUM}/sources",
        json={"outlet": f"Wire {HOSTILE}", "url": f"https://example.org/{HOSTILE}"},
    )
    fixed = await client.post(
        f"/v1/incidents/{BELGIUM}/corrections",
        json={"changes": {"count": 12, "count_range": None}, "note": f"ministry {HOSTILE}"},
    )
    position = fixed.headers["legation-position"]
    page = (await client.get("/embed/relations/RU/BE", params={"min_position": position})).text
    assert "<script>alert" not in page
    assert "Wire &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="https://example.org/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "corrected (recorded " in page
    assert ": ministry &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</li>" in page
    assert "Russian Federation has expelled 12 diplomats of Belgium.</p>" in page


async def test_a_known_at_page_says_it_never_changes(client: Client, seeded: int) -> None:
    page = (await client.get("/embed/countries/RU", params={"known_at": seeded})).text
    assert 'data-live="false"' in page
    assert f"As known at log position {seeded}, recorded " in page
    assert "This page never changes." in page
    live = (await client.get("/embed/countries/RU")).text
    assert "Live: this page follows the log" in live


async def test_an_actor_with_no_incidents_is_said_plainly_and_dark_is_dark(
    client: Client,
) -> None:
    page = (await client.get("/embed/countries/FI", params={"theme": "dark"})).text
    assert '<html lang="en" class="dark"' in page
    assert "<p>No expulsions involving Finland are recorded.</p>" in page
    svg = page.split("<figure>")[1]
    assert 'fill="#e6e6e6"' in svg  # the chart's own words are light on the dark theme
    assert 'fill="#e6e6e6"' not in (await client.get("/embed/countries/FI")).text
    refused = await client.get("/embed/relations/FI/fin")
    assert refused.status_code == 422


async def test_the_front_page_shows_standings_links_the_log_and_embed_code(
    client: Client, seeded: int
) -> None:
    page = (await client.get("/", params={"min_position": seeded})).text
    assert f"The log holds {seeded} events; the standings below are at log position " in page
    assert (
        '<a href="/embed/countries/RU">Russian Federation (RU)</a></th>'
        '<td class="n">54 (45 to 54)</td><td class="n">94 (at least 94)</td>'
    ) in page
    assert '<a href="/embed/relations/BE/RU">Belgium and Russian Federation</a>' in page
    assert "&lt;iframe src=&quot;/embed/countries/RU&quot;" in page
    assert '<th scope="col" aria-sort="descending"><a href="/?sort=expelled">' in page
    by_name = (await client.get("/", params={"sort": "name"})).text
    assert by_name.index("Belgium (BE)") < by_name.index("Russian Federation (RU)")


async def test_the_search_takes_names_and_codes(client: Client, seeded: int) -> None:
    for asked in ("Belgium", "bel", "BE", "bel gium"):
        answer = await client.get("/", params={"q": asked}, follow_redirects=False)
        if asked == "bel gium":
            assert answer.status_code == 200
            assert "No actor matches “bel gium”." in answer.text
        else:
            assert answer.status_code == 303, asked
            assert answer.headers["location"] == "/embed/countries/BE"
    several = await client.get("/", params={"q": "guinea"})
    assert '<a href="/embed/countries/GN">Guinea (GN)</a>' in several.text
    assert '<a href="/embed/countries/PG">Papua New Guinea (PG)</a>' in several.text
