"""API.md's worked example, figure for figure: the seed report recorded whole.

EU 19 on 5 April; Russia 18 EU on 15 April; Germany and France 75 jointly; Italy,
Spain and Slovenia with no number; Russia 21 Belgian (12 to 21, disputed) and 15
Dutch. Every expected figure is API.md's, worked by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]
SRC = [{"outlet": "Test Wire"}]


def expelled(on: str, by: str, of: str, **counts: Any) -> dict[str, Any]:
    return {"kind": "expulsion", "occurred_on": on, "expelling": by, "expelled": of,
            "sources": SRC, **counts}  # fmt: skip


SEED = [
    expelled("2022-04-04", "DE", "RU", count=75, joint_expelling=["FR"]),
    expelled("2022-04-05", "EU", "RU", count=19),
    expelled("2022-04-05", "IT", "RU"),
    expelled("2022-04-05", "ES", "RU"),
    expelled("2022-04-05", "SI", "RU"),
    expelled("2022-04-15", "RU", "EU", count=18),
    expelled("2022-04-19", "RU", "BE", count=21, count_range=[12, 21]),
    expelled("2022-04-19", "RU", "NL", count=15),
]


@pytest.fixture
async def seeded(client: Client) -> dict[str, Any]:
    position = 0
    for body in SEED:
        answer = await client.post("/v1/incidents", json=body)
        assert answer.status_code == 201, answer.text
        position = int(answer.headers["legation-position"])
    return {"min_position": position}


async def expulsions(client: Client, code: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await client.get(f"/v1/countries/{code}", params=params)
    assert answer.status_code == 200, answer.text
    figures: dict[str, Any] = answer.json()["expulsions"]
    return figures


async def test_russia_stands_at_54_of_45_to_54_and_94_of_at_least_94(
    client: Client, seeded: dict[str, Any]
) -> None:
    ru = await expulsions(client, "RU", seeded)
    assert ru["expelled_foreign_diplomats"] == 54
    assert ru["expelled_foreign_diplomats_range"] == [45, 54]
    assert ru["own_diplomats_expelled"] == 94
    assert ru["own_diplomats_expelled_range"] == [94, None]
    assert ru["uncounted_targeted"] == 3
    assert ru["uncounted_initiated"] == 0
    assert ru["balance"] == -40
    assert ru["balance_range"] == [None, -40]
    assert ru["disputed_incidents"] == 1
    assert (ru["incidents_initiated"], ru["incidents_targeted"]) == (3, 5)


async def test_germany_alone_expelled_none_of_the_joint_75_but_may_have_expelled_them_all(
    client: Client, seeded: dict[str, Any]
) -> None:
    de = await expulsions(client, "DE", seeded)
    assert de["expelled_foreign_diplomats"] == 0
    assert de["expelled_foreign_diplomats_range"] == [0, 75]
    assert de["joint_incidents"] == 1
    assert de["incidents_initiated"] == 1
    fr = await expulsions(client, "FR", seeded)
    assert fr["expelled_foreign_diplomats"] == 0
    assert fr["expelled_foreign_diplomats_range"] == [0, 75]


async def test_an_uncounted_report_leaves_the_number_and_opens_the_range(
    client: Client, seeded: dict[str, Any]
) -> None:
    it = await expulsions(client, "IT", seeded)
    assert it["expelled_foreign_diplomats"] == 0
    assert it["expelled_foreign_diplomats_range"] == [0, None]
    assert it["uncounted_initiated"] == 1
    assert it["balance_range"] == [0, None]


async def test_the_eu_side_expelled_94_russians_and_russia_54_of_its_diplomats(
    client: Client, seeded: dict[str, Any]
) -> None:
    side = await expulsions(client, "EU", seeded | {"members": "true"})
    assert side["expelled_foreign_diplomats"] == 94
    assert side["expelled_foreign_diplomats_range"] == [94, None]
    assert side["uncounted_initiated"] == 3
    assert side["joint_incidents"] == 0  # Germany and France both stood on the side
    assert side["own_diplomats_expelled"] == 54
    assert side["own_diplomats_expelled_range"] == [45, 54]
    row = (await client.get("/v1/relations/EU/RU", params=seeded | {"members": "true"})).json()
    assert row["relation"]["expelled_foreign_diplomats"] == 94
    assert row["relation"]["own_diplomats_expelled_range"] == [45, 54]


async def test_relation_rows_and_the_ledger_say_what_each_incident_says(
    client: Client, seeded: dict[str, Any]
) -> None:
    pair = (await client.get("/v1/relations/RU/BE", params=seeded)).json()
    relation = pair["relation"]
    assert relation["expelled_foreign_diplomats"] == 21
    assert relation["expelled_foreign_diplomats_range"] == [12, 21]
    assert relation["disputed_incidents"] == 1
    assert relation["balance_range"] == [12, 21]
    [incident] = pair["incidents"]
    assert (incident["count"], incident["count_range"]) == (21, [12, 21])
    assert incident["disputed"] is True
    joint = (await client.get("/v1/relations/RU/FR", params=seeded)).json()
    assert joint["relation"]["own_diplomats_expelled"] == 0
    assert joint["relation"]["own_diplomats_expelled_range"] == [0, 75]
    assert joint["relation"]["joint_incidents"] == 1
    [shared] = joint["incidents"]
    assert (shared["initiator"], shared["joint_expelling"], shared["count"]) == ("DE", ["FR"], 75)


async def test_the_timeline_names_a_joint_partys_role(
    client: Client, seeded: dict[str, Any]
) -> None:
    timeline = (await client.get("/v1/countries/FR/timeline", params=seeded)).json()
    [entry] = timeline["items"]
    assert (entry["role"], entry["initiator"], entry["joint_expelling"]) == (
        "joint_expelling",
        "DE",
        ["FR"],
    )
    italy = (await client.get("/v1/countries/IT/timeline", params=seeded)).json()["items"]
    assert (italy[0]["count"], italy[0]["count_range"], italy[0]["disputed"]) == (None, None, False)


async def test_the_demo_records_the_seed_report_whole(dsn: str, client: Client) -> None:
    from service.ops.demo import load_demo

    await load_demo(dsn)
    head = {"min_position": 10}
    ru = await expulsions(client, "RU", head)
    assert (ru["expelled_foreign_diplomats"], ru["expelled_foreign_diplomats_range"]) == (
        54,
        [45, 54],
    )
    assert (ru["own_diplomats_expelled"], ru["own_diplomats_expelled_range"]) == (94, [94, None])
    assert (ru["balance_range"], ru["uncounted_targeted"]) == ([None, -40], 3)
    side = await expulsions(client, "EU", head | {"members": "true"})
    assert (side["expelled_foreign_diplomats"], side["own_diplomats_expelled"]) == (94, 54)
    pair = (await client.get("/v1/relations/RU/UA", params=head)).json()["relation"]
    assert (pair["places_taken"], pair["places_lost"], pair["incidents"]) == (1, 0, 1)


async def test_a_sides_standings_are_the_blocs_row_alone(dsn: str) -> None:
    from service.log.database import connect
    from service.projections.standings import At, standings

    conn = await connect(dsn)
    try:
        assert await standings(conn, At(0, side="EU")) == []
        with pytest.raises(ValueError, match="EU side"):
            await standings(conn, At(0, side="EU"), "RU")
    finally:
        await conn.close()
