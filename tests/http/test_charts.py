"""Charts of the seed report: the Vega-Lite specification, the SVG, negotiation, problems,
and answers kept by position.

The EU-RU chart is drawn with `members=true` (the EU's side: the bloc and its members),
where Russia's 18, 21 and 15 all count against the side.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.http.routes import charts
from tests.seed import BELGIUM, EU_19, NETHERLANDS, RUSSIA_18, post_seed

Client = AsyncTestClient[Any]
VEGA_LITE = {"Accept": "application/vnd.vegalite.v5+json"}
EU_SIDE = "Expelled by the EU side"
RUSSIA = "Expelled by Russian Federation"


@pytest.fixture
async def seeded(client: Client) -> int:
    return await post_seed(client)


async def specification(client: Client, url: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(url, params=params, headers=VEGA_LITE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.vegalite.v5+json"
    spec: dict[str, Any] = answer.json()
    return spec


def layer(spec: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    """The inline data of the (first) layer drawing `mark`."""
    drawing = spec["vconcat"][0]["layer"]
    found = next(each for each in drawing if each["mark"]["type"] == mark)
    rows: list[dict[str, Any]] = found["data"]["values"]
    return rows


def last_point(spec: dict[str, Any], side: str) -> dict[str, Any]:
    return [row for row in layer(spec, "line") if row["side"] == side][-1]


async def test_the_eu_side_chart_steps_19_then_russias_18_21_15_with_belgiums_band(
    client: Client, seeded: int
) -> None:
    spec = await specification(
        client, "/v1/relations/EU/RU/chart", members="true", min_position=seeded
    )
    steps = [(s["side"], s["date"], s["number"], s["total"]) for s in layer(spec, "point")]
    assert steps == [
        (EU_SIDE, "2022-04-04", 75, 75),  # Germany and France together: the side's, whole
        (EU_SIDE, "2022-04-05", 19, 94),
        (EU_SIDE, "2022-04-05", 0, 94),  # Italy, Spain, Slovenia: no number given
        (EU_SIDE, "2022-04-05", 0, 94),
        (EU_SIDE, "2022-04-05", 0, 94),
        (RUSSIA, "2022-04-15", 18, 18),
        (RUSSIA, "2022-04-19", 21, 39),
        (RUSSIA, "2022-04-19", 15, 54),
    ]
    belgium = next(s for s in layer(spec, "point") if s["incident"] == BELGIUM)
    assert (belgium["least"], belgium["most"]) == (12, 21)
    assert (belgium["total_low"], belgium["total_high"]) == (30, 39)
    assert belgium["reported"] == "21 (the sources give 12 to 21)"
    assert belgium["expelled"] == "Belgium"  # named as reported, not as the side
    [link] = layer(spec, "rule")
    assert (link["from_date"], link["from_total"]) == ("2022-04-05", 94)
    assert (link["to_date"], link["to_total"]) == ("2022-04-15", 18)
    assert link["side"] == RUSSIA


async def test_the_chart_ends_where_the_standing_stands(client: Client, seeded: int) -> None:
    spec = await specification(
        client, "/v1/relations/EU/RU/chart", members="true", min_position=seeded
    )
    ledger = (await client.get("/v1/relations/EU/RU", params={"members": "true"})).json()
    figures = ledger["relation"]
    eu, ru = last_point(spec, EU_SIDE), last_point(spec, RUSSIA)
    assert [eu["total"], eu["low"], eu["high"]] == [
        figures["expelled_foreign_diplomats"],
        *figures["expelled_foreign_diplomats_range"],
    ]
    assert [ru["total"], ru["low"], ru["high"]] == [
        figures["own_diplomats_expelled"],
        *figures["own_diplomats_expelled_range"],
    ]
    assert (eu["high"], ru["low"], ru["high"]) == (None, 45, 54)


async def test_an_unbounded_band_is_drawn_open_and_said_in_words_never_as_a_number(
    client: Client, seeded: int
) -> None:
    spec = await specification(
        client, "/v1/relations/EU/RU/chart", members="true", min_position=seeded
    )
    eu = last_point(spec, EU_SIDE)
    assert (eu["open"], eu["high"], eu["top"]) == (True, None, spec_ceiling(spec))
    [note] = layer(spec, "text")
    assert note["note"] == "no upper bound: at least 94"
    assert spec["title"]["subtitle"] == [
        "The EU side has expelled 94 diplomats of Russian Federation "
        "(at least 94: 3 reports give no number).",
        "Russian Federation has expelled 54 diplomats of the EU side "
        "(45 to 54: Belgium's count is disputed).",
    ]


def spec_ceiling(spec: dict[str, Any]) -> int:
    line = next(each for each in spec["vconcat"][0]["layer"] if each["mark"]["type"] == "line")
    ceiling: int = line["encoding"]["y"]["scale"]["domain"][1]
    return ceiling


async def test_the_plain_pair_links_russias_18_to_the_eus_19(client: Client, seeded: int) -> None:
    spec = await specification(client, "/v1/relations/RU/EU/chart", min_position=seeded)
    steps = [(s["incident"], s["side"], s["number"]) for s in layer(spec, "point")]
    assert steps == [
        (EU_19, "Expelled by European Union", 19),
        (RUSSIA_18, "Expelled by Russian Federation", 18),
    ]
    assert [(r["from_date"], r["to_date"]) for r in layer(spec, "rule")] == [
        ("2022-04-05", "2022-04-15")
    ]


async def test_the_svg_is_the_default_and_states_its_position_marks_and_sources(
    client: Client, seeded: int
) -> None:
    answer = await client.get("/v1/countries/RU/chart", params={"min_position": seeded})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.headers["vary"] == "Accept"
    assert answer.headers["legation-position"] == str(seeded)
    svg = answer.text
    assert svg.startswith("<svg")
    assert f"As known at log position {seeded}, recorded " in svg
    assert "<title>2022-04-19: Russian Federation expelled 21 (the sources give 12 to 21) " in svg
    assert "Sources: AFP (quoting Russian foreign ministry).</title>" in svg
    assert "no upper bound: at least 94" in svg
    assert "<script" not in svg


async def test_the_specification_the_svg_and_other_accepts(client: Client, seeded: int) -> None:
    url = "/v1/relations/RU/BE/chart"
    for accept, expected in [
        ("image/svg+xml", "image/svg+xml"),
        ("image/*", "image/svg+xml"),
        ("text/html, */*;q=0.1", "image/svg+xml"),
        ("application/vnd.vegalite.v5+json", "application/vnd.vegalite.v5+json"),
    ]:
        answer = await client.get(url, headers={"Accept": accept})
        assert answer.status_code == 200, accept
        assert answer.headers["content-type"].startswith(expected), accept
    refused = await client.get(url, headers={"Accept": "application/json"})
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:legation:problem:not-acceptable"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/relations/RU/rus/chart", "counterpart"),
        ("/v1/relations/XX/RU/chart", "code"),
        ("/v1/countries/QQ/chart", "code"),
        ("/v1/countries/RU/chart?from=2022-04-20&until=2022-04-01", "from"),
        ("/v1/countries/RU/chart?members=true", "members"),
    ],
)
async def test_a_bad_request_is_a_problem_never_a_broken_image(
    client: Client, url: str, field: str
) -> None:
    answer = await client.get(url)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in answer.json()["errors"]] == [field]


async def test_a_chart_is_rendered_once_per_position_and_etagged(
    client: Client, seeded: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[str] = []
    real = charts._render

    async def counted(*args: Any) -> bytes:
        rendered.append(args[2])
        return await real(*args)

    monkeypatch.setattr(charts, "_render", counted)
    url = "/v1/relations/RU/NL/chart"
    await client.get(url, params={"min_position": seeded})
    first, again = await client.get(url), await client.get(url)
    assert first.content == again.content
    assert first.headers["etag"] == again.headers["etag"]
    assert len(rendered) == 1
    spec = await client.get(url, headers=VEGA_LITE)  # another answer, kept apart
    assert spec.headers["content-type"] == "application/vnd.vegalite.v5+json"
    assert len(rendered) == 2
    unchanged = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    moved = await client.post(
        f"/v1/incidents/{NETHERLANDS}/corrections", json={"changes": {"count": 14}}
    )
    later = await client.get(url, params={"min_position": moved.headers["legation-position"]})
    assert later.headers["etag"] != first.headers["etag"]
    assert len(rendered) == 3


async def test_known_at_never_changes_and_a_retraction_leaves_the_live_chart(
    client: Client, seeded: int
) -> None:
    url = "/v1/relations/RU/NL/chart"
    before = await client.get(url, params={"known_at": seeded}, headers=VEGA_LITE)
    retracted = await client.post(f"/v1/incidents/{NETHERLANDS}/retraction", json={"note": "no"})
    position = retracted.headers["legation-position"]
    live = await specification(client, url, min_position=position)
    assert live["vconcat"][0]["data"]["values"] == [
        {"message": "No expulsions between Russian Federation and Netherlands are recorded."}
    ]
    then = await client.get(url, params={"known_at": seeded}, headers=VEGA_LITE)
    assert then.content == before.content
    assert [s["number"] for s in layer(then.json(), "point")] == [15]
    assert then.headers["memento-datetime"]


async def test_sources_are_as_the_log_held_them_then(client: Client, seeded: int) -> None:
    url = "/v1/relations/RU/BE/chart"
    added = await client.post(
        f"/v1/incidents/{BELGIUM}/sources",
        json={"outlet": "<script>alert(1)</script> Wire", "url": "https://example.org/?a=1&b=2"},
    )
    position = added.headers["legation-position"]
    then = await specification(client, url, known_at=seeded)
    now = await specification(client, url, min_position=position)
    assert "Wire" not in layer(then, "point")[0]["sources"]
    assert layer(now, "point")[0]["sources"].endswith("; <script>alert(1)</script> Wire")
    svg = (await client.get(url)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Wire" in svg
    assert "<script>" not in svg


async def test_from_carries_earlier_incidents_into_the_first_level(
    client: Client, seeded: int
) -> None:
    spec = await specification(
        client,
        "/v1/relations/EU/RU/chart",
        members="true",
        min_position=seeded,
        **{"from": "2022-04-10", "until": "2022-04-30"},
    )
    assert {s["side"] for s in layer(spec, "point")} == {RUSSIA}
    first_eu = next(row for row in layer(spec, "line") if row["side"] == EU_SIDE)
    assert (first_eu["date"], first_eu["total"]) == ("2022-04-10", 94)
    assert last_point(spec, RUSSIA)["date"] == "2022-04-30"
    assert (
        "Totals include 5 incident(s) before 2022-04-10."
        in spec["vconcat"][1]["data"]["values"][0]["text"]
    )


async def test_an_actor_with_no_expulsions_is_said_plainly(client: Client) -> None:
    spec = await specification(client, "/v1/countries/FI/chart")
    assert spec["vconcat"][0]["data"]["values"] == [
        {"message": "No expulsions involving Finland are recorded."}
    ]
    svg = await client.get("/v1/countries/FI/chart")
    assert "No expulsions involving Finland are recorded." in svg.text
