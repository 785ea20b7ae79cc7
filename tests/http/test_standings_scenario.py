"""A hand-worked scenario: corrections, a retraction, a disputed count, towns changing hands.

Every expected number below is worked out by hand from the reports, not by the code.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]
NDJSON = {"content-type": "application/x-ndjson"}
SRC = [{"outlet": "Test Wire"}]
TOWN_A = {"name": "Aville", "geonames_id": 1, "region": "UA-14", "country": "UA"}
TOWN_B = {"name": "Bakhmut", "region": "UA-14", "country": "UA"}
TOWN_C = {"name": "Chasiv Yar", "country": "UA"}


def expulsion(on: str, by: str, of: str, count: int, **more: Any) -> dict[str, Any]:
    return {"kind": "expulsion", "occurred_on": on, "expelling": by, "expelled": of,
            "count": count, "sources": SRC, **more}  # fmt: skip


def sanctions(on: str, by: str, on_whom: str, round_: int) -> dict[str, Any]:
    return {"kind": "sanctions_round", "occurred_on": on, "imposing": by, "target": on_whom,
            "round": round_, "sources": SRC}  # fmt: skip


def town(
    on: str, place: dict[str, Any], controller: str, previous: str | None = None
) -> dict[str, Any]:
    body = {"kind": "territorial_control", "occurred_on": on, "place": place,
            "controller": controller, "sources": SRC}  # fmt: skip
    return body | ({"previous_controller": previous} if previous else {})


class Scenario(msgspec.Struct):
    ids: dict[str, str]
    before_correction: int
    head: int


@pytest.fixture
async def scenario(client: Client) -> Scenario:
    reports = {
        "i1": expulsion("2023-01-10", "FR", "DE", 10),
        "i2": expulsion("2023-01-20", "DE", "FR", 8),
        "i3": expulsion("2023-02-01", "FR", "IT", 5, count_range=[3, 5]),
        "i4": expulsion("2023-02-05", "IT", "FR", 7),
        "s1": sanctions("2023-03-01", "EU", "RU", 1),
        "s2": sanctions("2023-04-01", "EU", "RU", 2),
        "s3": sanctions("2023-04-15", "RU", "EU", 1),
        "t1": town("2023-05-01", TOWN_A, "UA"),
        "t2": town("2023-05-10", TOWN_A, "RU"),
        "t3": town("2023-06-01", TOWN_A, "UA", "RU"),
        "t4": town("2023-05-20", TOWN_B, "RU", "UA"),
        "t5": town("2023-06-05", TOWN_C, "contested", "UA"),
    }
    body = b"\n".join(msgspec.json.encode(r) for r in reports.values())
    batch = (await client.post("/v1/incidents:batch", content=body, headers=NDJSON)).json()
    ids = {name: item["id"] for name, item in zip(reports, batch["items"], strict=True)}
    await client.post(
        f"/v1/incidents/{ids['i2']}/corrections", json={"changes": {"responds_to": [ids["i1"]]}}
    )
    before = int((await client.get("/v1/events")).json()["last_position"])
    await client.post(f"/v1/incidents/{ids['i1']}/corrections", json={"changes": {"count": 12}})
    retracted = await client.post(f"/v1/incidents/{ids['i4']}/retraction", json={"note": "wrong"})
    return Scenario(ids, before, int(retracted.headers["legation-position"]))


async def get(client: Client, url: str, scenario: Scenario, **params: Any) -> Any:
    response = await client.get(url, params={"min_position": scenario.head, **params})
    assert response.status_code == 200, response.text
    return response.json()


def numbers(standing: dict[str, Any]) -> tuple[Any, ...]:
    e, s, t = standing["expulsions"], standing["sanctions"], standing["territory"]
    return (
        e["expelled_foreign_diplomats"], e["own_diplomats_expelled"], e["balance"],
        e["incidents_initiated"], e["incidents_targeted"],
        s["rounds_imposed"], s["rounds_received"],
        t["places_controlled"], t["places_gained"], t["places_lost"],
    )  # fmt: skip


EXPECTED = {
    # FR expelled 12 DE (i1 as corrected) + 5 IT (i3, disputed: counts 5); DE expelled
    # 8 FR (i2); IT's 7 (i4) is retracted.
    "FR": (17, 8, 9, 2, 1, 0, 0, 0, 0, 0),
    "DE": (8, 12, -4, 1, 1, 0, 0, 0, 0, 0),
    "IT": (0, 5, -5, 0, 1, 0, 0, 0, 0, 0),
    # RU took Aville from UA (t2, no previous_controller: the place's earlier
    # controller) and Bakhmut (t4), lost Aville back (t3): holds Bakhmut only.
    "RU": (0, 0, 0, 0, 0, 1, 2, 1, 2, 1),
    # UA holds Aville again (t3), lost it (t2), Bakhmut (t4) and Chasiv Yar (t5).
    "UA": (0, 0, 0, 0, 0, 0, 0, 1, 1, 3),
    "EU": (0, 0, 0, 0, 0, 2, 1, 0, 0, 0),
}


async def test_every_country_standing_matches_the_hand_count(
    client: Client, scenario: Scenario
) -> None:
    for code, expected in EXPECTED.items():
        standing = await get(client, f"/v1/countries/{code}", scenario)
        assert numbers(standing) == expected, code
    ru = await get(client, "/v1/countries/RU", scenario)
    assert ru["sanctions"]["latest_received"] == {
        "incident": scenario.ids["s2"], "imposing": "EU", "round": 2, "occurred_on": "2023-04-01"
    }  # fmt: skip
    assert ru["last_incident_on"] == "2023-06-01"
    listed = await get(client, "/v1/countries", scenario, sort="balance")
    assert [item["code"] for item in listed["items"]] == ["FR", "EU", "RU", "UA", "DE", "IT"]
    assert {item["code"]: numbers(item) for item in listed["items"]} == EXPECTED


async def test_the_bilateral_ledger(client: Client, scenario: Scenario) -> None:
    relations = await get(client, "/v1/countries/FR/relations", scenario)
    rows = {row["counterpart"]: row for row in relations["items"]}
    assert set(rows) == {"DE", "IT"}
    assert (rows["DE"]["expelled_foreign_diplomats"], rows["DE"]["own_diplomats_expelled"]) == (
        12,
        8,
    )
    assert (rows["IT"]["expelled_foreign_diplomats"], rows["IT"]["own_diplomats_expelled"]) == (
        5,
        0,
    )
    assert (rows["DE"]["incidents"], rows["IT"]["incidents"]) == (2, 1)
    eu = {
        r["counterpart"]: r
        for r in (await get(client, "/v1/countries/EU/relations", scenario))["items"]
    }
    assert (eu["RU"]["sanctions_rounds_imposed"], eu["RU"]["sanctions_rounds_received"]) == (2, 1)
    ledger = await get(client, "/v1/relations/fr/deu", scenario)
    assert [i["id"] for i in ledger["incidents"]] == [scenario.ids["i1"], scenario.ids["i2"]]
    assert ledger["incidents"][1]["responds_to"] == [scenario.ids["i1"]]
    assert ledger["relation"]["expelled_foreign_diplomats"] == 12


async def test_territories_and_timeline(client: Client, scenario: Scenario) -> None:
    places = (await get(client, "/v1/territories", scenario, country="UA"))["items"]
    summary = [(p["place"]["name"], p["controller"], p["since"], p["reports"]) for p in places]
    assert summary == [
        ("Aville", "UA", "2023-06-01", 3),
        ("Bakhmut", "RU", "2023-05-20", 1),
        ("Chasiv Yar", "contested", "2023-06-05", 1),
    ]
    held = (await get(client, "/v1/territories", scenario, controller="RU"))["items"]
    assert [p["place"]["name"] for p in held] == ["Bakhmut"]
    timeline = (await get(client, "/v1/countries/UA/timeline", scenario))["items"]
    ids = scenario.ids
    assert [(i["id"], i["role"]) for i in timeline] == [
        (ids["t5"], "previous_controller"),
        (ids["t3"], "controller"),
        (ids["t4"], "previous_controller"),
        (ids["t2"], "location"),
        (ids["t1"], "controller"),
    ]


async def test_as_of_and_known_at(client: Client, scenario: Scenario) -> None:
    # Known before i1 was corrected to 12 (and before i4 was retracted).
    then = await get(client, "/v1/countries/FR", scenario, known_at=scenario.before_correction)
    assert numbers(then)[:3] == (15, 15, 0)
    assert then["position"] == scenario.before_correction
    # What had occurred by 31 January: only i1 (as corrected) and i2.
    january = await get(client, "/v1/countries/FR", scenario, as_of="2023-01-31")
    assert numbers(january)[:3] == (12, 8, 4)
    both = await get(client, "/v1/countries/FR", scenario, as_of="2023-01-31",
                     known_at=scenario.before_correction)  # fmt: skip
    assert numbers(both)[:3] == (10, 8, 2)
    may = await get(client, "/v1/territories", scenario, as_of="2023-05-15")
    assert [(p["place"]["name"], p["controller"]) for p in may["items"]] == [("Aville", "RU")]


async def test_standings_carry_etags_and_answer_304(client: Client, scenario: Scenario) -> None:
    for url in ("/v1/countries", "/v1/countries/FR", "/v1/countries/FR/relations",
                "/v1/relations/FR/DE", "/v1/countries/FR/timeline", "/v1/territories"):  # fmt: skip
        first = await client.get(url, params={"min_position": scenario.head})
        assert first.headers["legation-position"] == str(scenario.head)
        again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304, url
        assert again.headers["etag"] == first.headers["etag"]
    france = await client.get("/v1/countries/FR")
    later = await client.post(
        f"/v1/incidents/{scenario.ids['i3']}/corrections", json={"changes": {"count": 4}}
    )
    changed = await client.get(
        "/v1/countries/FR",
        params={"min_position": later.headers["legation-position"]},
        headers={"If-None-Match": france.headers["etag"]},
    )
    assert changed.headers["etag"] != france.headers["etag"]
    assert changed.status_code == 200


async def test_unknown_codes_and_bad_queries_are_422(client: Client) -> None:
    for url, field in [
        ("/v1/countries/XX", "code"),
        ("/v1/relations/FR/XX", "counterpart"),
        ("/v1/countries/FR?as_of=2023-02-30", "as_of"),
        ("/v1/countries/FR?known_at=-1", "known_at"),
        ("/v1/countries?sort=name", "sort"),
        ("/v1/territories?region=UA-99", "region"),
        ("/v1/territories?controller=XX", "controller"),
    ]:
        response = await client.get(url)
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == field, url
    known = await client.get("/v1/countries/NZ")
    assert known.status_code == 200
    assert numbers(known.json()) == (0,) * 10


async def test_since_is_the_report_that_last_set_the_controller(client: Client) -> None:
    town_d = {"name": "Dtown", "geonames_id": 4, "country": "UA"}
    reports = [
        town("2023-04-01", town_d, "RU", "UA"),
        town("2023-04-10", town_d, "RU"),  # confirms RU: sets nothing
        town("2023-04-18", town_d, "RU", "UA"),  # reported as taken again
    ]
    body = b"\n".join(msgspec.json.encode(r) for r in reports)
    batch = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    wait = {"min_position": batch.json()["last_position"]}
    places = (await client.get("/v1/territories", params=wait)).json()["items"]
    assert [(p["controller"], p["since"], p["reports"]) for p in places] == [
        ("RU", "2023-04-18", 3)
    ]
    russia = (await client.get("/v1/countries/RU", params=wait)).json()["territory"]
    assert russia == {"places_controlled": 1, "places_gained": 2, "places_lost": 0}
