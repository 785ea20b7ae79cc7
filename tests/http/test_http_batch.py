"""POST /v1/incidents:batch: NDJSON, all or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from service.incidents.batch_handler import CHUNK_LINES
from service.incidents.batches import MAX_LINES
from tests.factories import expulsion, sanctions_round, territorial_control

Client = AsyncTestClient[Any]
NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(*bodies: Any) -> bytes:
    return b"\n".join(msgspec.json.encode(body) for body in bodies) + b"\n"


async def log_size(client: Client) -> int:
    return int((await client.get("/v1/events")).json()["last_position"])


async def test_a_batch_appends_every_kind_and_answers_ids_and_positions(client: Client) -> None:
    chosen = str(uuid.uuid4())
    body = ndjson(expulsion(id=chosen), sanctions_round(), territorial_control())
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 201
    result = response.json()
    assert [item["line"] for item in result["items"]] == [1, 2, 3]
    assert [item["position"] for item in result["items"]] == [1, 2, 3]
    assert result["items"][0]["id"] == chosen
    assert result["last_position"] == 3
    assert response.headers["legation-position"] == "3"
    kinds = [
        (await client.get(f"/v1/incidents/{item['id']}")).json()["kind"] for item in result["items"]
    ]
    assert kinds == ["expulsion", "sanctions_round", "territorial_control"]


async def test_a_batch_with_a_bad_third_line_is_422_and_writes_nothing(client: Client) -> None:
    body = ndjson(expulsion(), sanctions_round(), expulsion(count=0), territorial_control())
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith("line 3:")
    assert problem["errors"][0] == {"field": "count", "message": "Expected `int` >= 1", "line": 3}
    assert await log_size(client) == 0


async def test_every_bad_line_is_listed_and_malformed_lines_are_named(client: Client) -> None:
    body = ndjson(expulsion()) + b"{not json\n" + ndjson(sanctions_round(target="EU"))
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "body"), (3, "target")]
    assert await log_size(client) == 0


async def test_blank_lines_are_skipped_but_counted(client: Client) -> None:
    body = b"\n" + ndjson(expulsion()) + b"\n\n" + ndjson(expulsion(count=-3))
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.json()["errors"][0]["line"] == 5


async def test_a_batch_retried_with_its_ids_changes_nothing(client: Client) -> None:
    body = ndjson(expulsion(id=str(uuid.uuid4())), sanctions_round(id=str(uuid.uuid4())))
    first = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    again = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert again.status_code == 201
    assert [i["position"] for i in again.json()["items"]] == [1, 2]
    assert [i["duplicate"] for i in again.json()["items"]] == [True, True]
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in first.json()["items"]]
    assert await log_size(client) == 2


async def test_a_batch_retried_with_its_idempotency_key_changes_nothing(client: Client) -> None:
    body, headers = (
        ndjson(expulsion(), expulsion(expelled="BE")),
        NDJSON | {"Idempotency-Key": "b1"},
    )
    first = await client.post("/v1/incidents:batch", content=body, headers=headers)
    again = await client.post("/v1/incidents:batch", content=body, headers=headers)
    assert first.json()["items"] == [dict(i, duplicate=False) for i in again.json()["items"]]
    assert await log_size(client) == 2
    other = ndjson(expulsion(count=3), expulsion(expelled="BE"))
    reused = await client.post("/v1/incidents:batch", content=other, headers=headers)
    assert reused.status_code == 422
    assert await log_size(client) == 2


async def test_a_batch_clashing_with_the_log_is_409_and_writes_nothing(client: Client) -> None:
    taken = str(uuid.uuid4())
    await client.post("/v1/incidents", json=expulsion(id=taken))
    body = ndjson(sanctions_round(), expulsion(id=taken, count=99))
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 409
    assert response.json()["detail"].startswith("line 2:")
    assert await log_size(client) == 1


async def test_a_batch_repeating_an_id_is_422(client: Client) -> None:
    same = str(uuid.uuid4())
    body = ndjson(expulsion(id=same), expulsion(id=same, count=2))
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "id",
        "message": "repeats the incident id of line 1",
        "line": 2,
    }


async def test_a_batch_must_be_ndjson_and_not_empty(client: Client) -> None:
    as_json = await client.post("/v1/incidents:batch", json=[expulsion()])
    assert as_json.status_code == 415
    empty = await client.post("/v1/incidents:batch", content=b"\n\n", headers=NDJSON)
    assert empty.status_code == 422
    assert await log_size(client) == 0


# Batches longer than a chunk are appended a chunk at a time in one transaction.
MANY = 2 * CHUNK_LINES + 7


async def test_a_batch_of_several_chunks_appends_every_line_in_order(client: Client) -> None:
    body = ndjson(*(expulsion(count=n) for n in range(1, MANY + 1)))
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [item["position"] for item in items] == list(range(1, MANY + 1))
    assert [item["line"] for item in items] == list(range(1, MANY + 1))
    ledger = (await client.get("/v1/relations/RU/NL", params={"min_position": MANY})).json()
    assert ledger["relation"]["expelled_foreign_diplomats"] == MANY * (MANY + 1) // 2


async def test_a_bad_line_in_a_later_chunk_rolls_back_the_chunks_before_it(
    client: Client,
) -> None:
    reports = [expulsion(count=n) for n in range(1, MANY + 1)]
    reports[-1] = expulsion(count=-1)
    reports[CHUNK_LINES + 3] = expulsion(expelled="XX")
    body = ndjson(*reports)
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 422
    assert [error["line"] for error in response.json()["errors"]] == [CHUNK_LINES + 4, MANY]
    assert await log_size(client) == 0


async def test_a_clash_in_a_later_chunk_rolls_back_the_whole_batch(client: Client) -> None:
    taken = str(uuid.uuid4())
    await client.post("/v1/incidents", json=expulsion(id=taken))
    reports = [expulsion(count=n) for n in range(1, MANY + 1)]
    reports[CHUNK_LINES + 1] = expulsion(id=taken, count=99)
    body = ndjson(*reports)
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"line {CHUNK_LINES + 2}:")
    assert await log_size(client) == 1


async def test_an_id_repeated_across_chunks_is_422(client: Client) -> None:
    same = str(uuid.uuid4())
    reports = [expulsion(count=n) for n in range(1, MANY + 1)]
    reports[0], reports[-1] = expulsion(id=same), expulsion(id=same, count=2)
    response = await client.post("/v1/incidents:batch", content=ndjson(*reports), headers=NDJSON)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "id", "message": "repeats the incident id of line 1", "line": MANY}
    ]
    assert await log_size(client) == 0


async def test_a_nul_character_in_a_batch_is_422_naming_line_and_field(client: Client) -> None:
    nul = expulsion(sources=[{"outlet": "AFP", "url": "https://a.example/\u0000x"}])
    body = ndjson(expulsion(), nul)
    response = await client.post("/v1/incidents:batch", content=body, headers=NDJSON)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "sources[0].url",
            "message": "must not contain the NUL character (\\u0000)",
            "line": 2,
        }
    ]
    assert await log_size(client) == 0


async def test_blank_lines_count_toward_the_line_limit(client: Client) -> None:
    at_limit = b"\n" * (MAX_LINES - 1) + ndjson(expulsion())  # the report is line 10,000
    assert (await client.post("/v1/incidents:batch", content=at_limit, headers=NDJSON)).is_success
    for past in (b"\n" * MAX_LINES + ndjson(expulsion()), at_limit + b"\n", b"\n" * (32 << 20)):
        response = await client.post("/v1/incidents:batch", content=past, headers=NDJSON)
        assert response.status_code == 422
        assert "at most 10000 lines" in response.json()["detail"]
    assert await log_size(client) == 1
