"""Accept: text/csv on the four lists API.md names: each JSON page as RFC 4180 CSV."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.http.route_meta import meta_of
from service.ops.demo import DEMO_FILE
from service.projections.answer_cache import Remembered
from tests.conftest import authorised
from tests.factories import territorial_control
from tests.http.every_route import operations

Client = AsyncTestClient[Any]
CSV = {"Accept": "text/csv"}
CSV_TYPE = "text/csv; charset=utf-8"
LINK = re.compile(r'<([^>]+)>; rel="next"')
# Each list, with filters: the CSV answers the same page as the JSON.
LISTS = [
    ("/v1/incidents", {}),
    ("/v1/incidents", {"country": "RU", "kind": "expulsion", "since": "2022-04-05"}),
    ("/v1/countries", {"sort": "own_diplomats_expelled"}),
    ("/v1/countries/RU/timeline", {"as_of": "2022-04-18"}),
    ("/v1/countries/UA/timeline", {}),
    ("/v1/territories", {"country": "UA"}),
]
PATHS = sorted({path for path, _ in LISTS})
# The README's rules, read from the JSON side: the standing's groups are not prefixes.
GROUPS = {"expulsions", "sanctions", "territory"}


@pytest.fixture
async def demo(client: Client) -> dict[str, str]:
    """The demo's incidents (the seed report whole: a dispute, uncounted and joint reports),
    and two more places, so that every list has three pages of two."""
    places = [
        territorial_control(place={"name": name, "country": "UA", "region": "UA-63"})
        for name in ("Izium", "Balakliia")
    ]
    lines = b"".join(msgspec.json.encode(place) + b"\n" for place in places)
    answer = await client.post(
        "/v1/incidents:batch",
        content=DEMO_FILE.read_bytes() + lines,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 201, answer.text
    return {"min_position": str(answer.json()["last_position"])}


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def flattened(item: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """What the CSV's cells must say of a JSON item; a null object is one empty entry."""
    cells: dict[str, str] = {}
    for name, value in item.items():
        if isinstance(value, dict):
            cells |= flattened(value, prefix if name in GROUPS else f"{prefix}{name}_")
        elif name.endswith("_range"):
            stem = prefix + name.removesuffix("_range")
            low, high = value or (None, None)
            cells |= {f"{stem}_low": text(low), f"{stem}_high": text(high)}
        elif name == "sources":
            cells[name] = "; ".join(source["outlet"] for source in value)
        elif name == "corrections":
            cells[name] = str(len(value))
        elif isinstance(value, list):
            cells[prefix + name] = "; ".join(text(part) for part in value)
        else:
            cells[prefix + name] = text(value)
    return cells


def table(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV body, checked to end every record with CRLF."""
    assert body.endswith(b"\r\n")
    records = list(csv.reader(io.StringIO(body.decode(), newline="")))
    header = records[0]
    assert all(len(record) == len(header) for record in records)
    return header, [dict(zip(header, record, strict=True)) for record in records[1:]]


def assert_same(json_item: dict[str, Any], header: list[str], row: dict[str, str]) -> None:
    expected = flattened(json_item)
    for column in header:
        assert row[column] == expected.get(column, ""), (column, json_item)
    # What the JSON says and the CSV has no column for can only be a null object.
    assert all(expected[name] == "" for name in expected.keys() - set(header)), expected


async def items_of(client: Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["items"]
    return found


@pytest.mark.parametrize(("path", "filters"), LISTS)
async def test_a_csv_page_is_the_json_page_flattened(
    client: Client, demo: dict[str, str], path: str, filters: dict[str, str]
) -> None:
    params = {**demo, **filters}
    items = await items_of(client, path, params)
    answer = await client.get(path, params=params, headers=CSV)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == CSV_TYPE
    assert answer.headers["vary"] == "Accept"
    header, rows = table(answer.content)
    assert len(rows) == len(items) > 0
    for item, row in zip(items, rows, strict=True):
        assert_same(item, header, row)


async def test_ranges_nulls_and_joint_parties_read_as_the_sources_give_them(
    client: Client, demo: dict[str, str]
) -> None:
    answer = await client.get("/v1/countries", params=demo, headers=CSV)
    ru = next(row for row in table(answer.content)[1] if row["code"] == "RU")
    assert (ru["expelled_foreign_diplomats"], ru["expelled_foreign_diplomats_low"]) == ("54", "45")
    assert (ru["own_diplomats_expelled_low"], ru["own_diplomats_expelled_high"]) == ("94", "")
    assert (ru["balance"], ru["balance_low"], ru["balance_high"]) == ("-40", "", "-40")
    assert ru["latest_received_imposing"] == "EU"
    answer = await client.get("/v1/incidents", params={**demo, "limit": "50"}, headers=CSV)
    rows = table(answer.content)[1]
    be = next(row for row in rows if row["expelled"] == "BE")
    assert (be["count"], be["count_low"], be["count_high"], be["disputed"]) == (
        "21", "12", "21", "true"
    )  # fmt: skip
    de = next(row for row in rows if row["expelling"] == "DE")
    assert (de["joint_expelling"], de["count"]) == ("FR", "75")
    uncounted = [row for row in rows if row["kind"] == "expulsion" and row["count"] == ""]
    assert {row["expelling"] for row in uncounted} == {"IT", "ES", "SI"}


@pytest.mark.parametrize("path", PATHS)
async def test_csv_pages_on_through_link_like_json(
    client: Client, demo: dict[str, str], path: str
) -> None:
    whole_header, whole = table((await client.get(path, params=demo, headers=CSV)).content)
    assert len(whole) > 2
    json_first = await client.get(path, params={**demo, "limit": "2"})
    answer = await client.get(path, params={**demo, "limit": "2"}, headers=CSV)
    assert LINK.findall(answer.headers["link"]) == LINK.findall(json_first.headers["link"])
    rows: list[dict[str, str]] = []
    while True:
        assert answer.status_code == 200, answer.text
        header, page = table(answer.content)
        assert header == whole_header
        assert 0 < len(page) <= 2
        rows += page
        following = LINK.findall(answer.headers.get("link", ""))
        if not following:
            break
        answer = await client.get(following[0], headers=CSV)
    assert rows == whole


@pytest.mark.parametrize("path", PATHS)
async def test_etags_and_positions_behave_as_for_json_and_never_cross(
    client: Client, demo: dict[str, str], path: str
) -> None:
    as_json = await client.get(path, params=demo)
    as_csv = await client.get(path, params=demo, headers=CSV)
    assert as_csv.headers["legation-position"] == as_json.headers["legation-position"]
    assert ("etag" in as_csv.headers) == ("etag" in as_json.headers)
    if "etag" not in as_json.headers:
        return  # the incident list has no ETag, in either representation
    assert as_csv.headers["etag"] != as_json.headers["etag"]
    same = await client.get(path, headers={**CSV, "If-None-Match": as_csv.headers["etag"]})
    assert same.status_code == 304
    assert same.headers["vary"] == "Accept"
    assert same.headers["legation-position"] == as_csv.headers["legation-position"]
    other = await client.get(path, headers={**CSV, "If-None-Match": as_json.headers["etag"]})
    assert other.status_code == 200
    assert other.content == as_csv.content
    back = await client.get(path, headers={"If-None-Match": as_csv.headers["etag"]})
    assert (back.status_code, back.content) == (200, as_json.content)


async def test_the_edge_keeps_json_and_csv_answers_apart(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=dsn))
    async with AsyncTestClient(app=app) as client:
        authorised(client, admin_key)
        position = (await client.post("/v1/incidents", json={
            "kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU",
            "expelled": "BE", "count": 21, "count_range": [12, 21],
            "sources": [{"outlet": "AFP"}]}
        )).headers["legation-position"]  # fmt: skip
        url, query = "/v1/countries", f"min_position={position}"
        answers = []
        for _ in range(2):
            for headers in ({}, CSV, {"Accept": "application/json"}, {"Accept": "text/*"}):
                answer = await client.get(f"{url}?{query}", headers=headers)
                answers.append((answer.headers["content-type"], answer.content))
        assert answers[4:] == answers[:4]  # the second round, from memory
        assert [kind for kind, _ in answers[:4]] == [
            "application/json", CSV_TYPE, "application/json", CSV_TYPE
        ]  # fmt: skip
        assert answers[1][1].startswith(b"code,name,")
        for representation in ("json", "csv"):
            key = ("edge", url, query.encode(), representation)
            assert isinstance(app.state.answers.get(key), Remembered), representation


async def test_csv_elsewhere_is_406_naming_what_is_offered(client: Client) -> None:
    app = create_app(Settings(database_url="postgresql://unused@localhost/x"))
    refused = 0
    for method, path, handler in operations(app):
        meta = meta_of(handler)
        if meta is not None and meta.csv:
            continue
        answer = await client.request(method, path, headers=CSV)
        assert answer.status_code == 406, (method, path, answer.text)
        problem = answer.json()
        assert problem["type"] == "urn:legation:problem:not-acceptable"
        assert problem["acceptable"] == ["application/json"]
        refused += 1
    assert refused >= 25
    lenient = {"Accept": "text/csv, application/json;q=0.5"}
    answer = await client.get("/v1/countries/RU", headers=lenient)
    assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/csv;q=0.1, */*"])
async def test_json_stays_the_default_of_the_lists(client: Client, accept: str) -> None:
    for path in PATHS:
        answer = await client.get(path, headers={"Accept": accept})
        assert answer.headers["content-type"] == "application/json", (path, accept)
