"""The app serves the committed OpenAPI document, and answers as it says."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from service.ops.contracts import OPENAPI_FILE
from tests.domain.test_openapi_for_generators import headers_of
from tests.factories import expulsion


async def test_the_app_serves_the_committed_document(client: AsyncTestClient[Any]) -> None:
    served = await client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(OPENAPI_FILE.read_bytes())
    docs = await client.get("/schema")
    assert docs.status_code == 200
    assert "<html" in docs.text.lower()


async def test_answers_carry_every_header_the_document_says_they_always_do(
    client: AsyncTestClient[Any],
) -> None:
    created = await client.post("/v1/incidents", json=expulsion())
    incident, etag = created.json()["id"], created.headers["etag"]
    corrected = await client.post(
        f"/v1/incidents/{incident}/corrections",
        json={"changes": {"count": 3}},
        headers={"If-Match": etag},
    )
    read_models = {"min_position": corrected.headers["legation-position"]}
    standing = await client.get("/v1/countries/RU", params=read_models)
    answers = [
        ("reportIncident", created),
        ("correctIncident", corrected),
        ("getIncident", await client.get(f"/v1/incidents/{incident}")),
        ("getIncident", await client.get(f"/v1/incidents/{incident}", headers=same('"2"'))),
        ("getIncident", await client.get(f"/v1/incidents/{uuid.uuid4()}")),
        ("listIncidents", await client.get("/v1/incidents", params=read_models)),
        ("getCountryStanding", standing),
        ("getCountryStanding", await client.get("/v1/countries/RU", headers=same(standing))),
        ("listEvents", await client.get("/v1/events")),
        ("getEventSchema", await client.get("/v1/schemas/incident.corrected")),
        ("reportIncident", await client.post("/v1/incidents", json=expulsion(), headers=NO_KEY)),
    ]
    statuses = [answer.status_code for _, answer in answers]
    assert statuses == [201, 200, 200, 304, 404, 200, 200, 304, 200, 200, 401]
    for operation_id, answer in answers:
        documented = headers_of(operation_id, str(answer.status_code))
        required = [name for name, header in documented.items() if header.get("required")]
        missing = [name for name in required if name.lower() not in answer.headers]
        assert missing == [], (operation_id, answer.status_code)


NO_KEY = {"Authorization": "Bearer not-a-key"}


def same(held: str | httpx.Response) -> dict[str, str]:
    """If-None-Match for an ETag, or for the ETag of an answer held."""
    return {"If-None-Match": held if isinstance(held, str) else held.headers["etag"]}
