"""`members=true`: a bloc's side counted by membership on each incident's date."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.incidents.blocs import BLOCS
from tests.factories import expulsion

Client = AsyncTestClient[Any]

# (expelling, expelled, count, occurred_on)
INCIDENTS = [
    ("EU", "RU", 19, "2022-04-05"),
    ("RU", "EU", 18, "2022-04-15"),
    ("RU", "BE", 21, "2022-04-19"),
    ("RU", "NL", 15, "2022-04-19"),
    ("DE", "RU", 40, "2022-04-04"),
    ("GB", "RU", 5, "2022-04-10"),  # no longer a member
    ("GB", "RU", 3, "2019-06-01"),  # a member then
    ("RU", "GB", 4, "2019-07-01"),
    ("FR", "BE", 2, "2022-05-01"),  # inside the side: left out
]


def on_eu_side(code: str, day: str) -> bool:
    return code in BLOCS["EU"].side(date.fromisoformat(day))


def naive(as_of: str | None = None) -> dict[str, int]:
    """The EU side's expulsion figures, folded here from INCIDENTS and the bloc data."""
    figures = {"out": 0, "in": 0, "initiated": 0, "targeted": 0, "with_ru": 0}
    for expelling, expelled, count, day in INCIDENTS:
        if as_of is not None and day > as_of:
            continue
        ours, theirs = on_eu_side(expelling, day), on_eu_side(expelled, day)
        if ours and not theirs:
            figures["out"] += count
            figures["initiated"] += 1
        elif theirs and not ours:
            figures["in"] += count
            figures["targeted"] += 1
        figures["with_ru"] += (ours or theirs) and "RU" in (expelling, expelled)
    return figures


async def seed(client: Client) -> int:
    position = 0
    for expelling, expelled, count, day in INCIDENTS:
        body = expulsion(expelling=expelling, expelled=expelled, count=count, occurred_on=day)
        posted = await client.post("/v1/incidents", json=body)
        assert posted.status_code == 201, posted.text
        position = int(posted.headers["legation-position"])
    return position


@pytest.mark.parametrize("as_of", [None, "2022-04-10", "2019-12-31"])
async def test_the_eu_side_counts_its_members_on_each_incidents_date(
    client: Client, as_of: str | None
) -> None:
    params: dict[str, Any] = {"members": "true", "min_position": await seed(client)}
    if as_of is not None:
        params["as_of"] = as_of
    side = (await client.get("/v1/countries/EU", params=params)).json()["expulsions"]
    expected = naive(as_of)
    assert side["expelled_foreign_diplomats"] == expected["out"]
    assert side["own_diplomats_expelled"] == expected["in"]
    assert side["incidents_initiated"] == expected["initiated"]
    assert side["incidents_targeted"] == expected["targeted"]
    assert side["balance"] == expected["out"] - expected["in"]


async def test_without_members_the_bloc_is_only_itself(client: Client) -> None:
    position = await seed(client)
    alone = await client.get("/v1/countries/EU", params={"min_position": position})
    assert alone.json()["expulsions"]["expelled_foreign_diplomats"] == 19
    assert alone.json()["expulsions"]["own_diplomats_expelled"] == 18
    side = await client.get("/v1/countries/EU", params={"min_position": position, "members": 1})
    assert side.json()["expulsions"]["expelled_foreign_diplomats"] == 19 + 40 + 3
    assert side.json()["expulsions"]["own_diplomats_expelled"] == 18 + 21 + 15 + 4


async def test_the_side_ledger_names_the_parties_as_the_incidents_do(client: Client) -> None:
    position = await seed(client)
    params: dict[str, str | int] = {"members": "true", "min_position": position}
    rows = (await client.get("/v1/countries/EU/relations", params=params)).json()["items"]
    assert [row["counterpart"] for row in rows] == ["RU"]  # GB's 2022 expulsion is not the EU's
    assert rows[0]["expelled_foreign_diplomats"] == naive()["out"]
    assert rows[0]["own_diplomats_expelled"] == naive()["in"]
    assert rows[0]["incidents"] == naive()["with_ru"]
    ledger = (await client.get("/v1/relations/EU/RU", params=params)).json()
    assert ledger["relation"]["expelled_foreign_diplomats"] == naive()["out"]
    parties = {(item["initiator"], item["recipient"]) for item in ledger["incidents"]}
    assert ("DE", "RU") in parties  # the member, not "EU"
    assert ("RU", "BE") in parties
    assert ("GB", "RU") in parties  # 2019, while a member
    assert len(ledger["incidents"]) == naive()["with_ru"]


async def test_members_takes_only_a_bloc(client: Client) -> None:
    answer = await client.get("/v1/countries/RU", params={"members": "true"})
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == ["members"]
