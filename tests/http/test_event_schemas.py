"""GET /v1/schemas/{type}: every published schema of an event type's data, as schemas/ holds it."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.incidents.catalogue import CATALOGUE
from service.ops.contracts import SCHEMAS_DIR

Client = AsyncTestClient[Any]


async def test_the_current_schema_of_every_type_is_served_as_published(client: Client) -> None:
    for entry in CATALOGUE:
        served = await client.get(f"/v1/schemas/{entry.name}")
        assert served.status_code == 200, entry.name
        assert served.headers["content-type"] == "application/schema+json"
        assert served.content == (SCHEMAS_DIR / f"{entry.name}.json").read_bytes()


async def test_every_published_version_stays_served(client: Client) -> None:
    versions = sorted(SCHEMAS_DIR.glob("*.v*.json"))
    assert "expulsion.reported.v1.json" in {path.name for path in versions}
    for path in versions:
        name, _, version = path.stem.rpartition(".v")
        served = await client.get(f"/v1/schemas/{name}", params={"version": version})
        assert served.status_code == 200, path.name
        assert served.content == path.read_bytes()
    old = await client.get("/v1/schemas/expulsion.reported?version=1")
    assert "count" in old.json()["required"]


async def test_an_unknown_type_or_version_is_a_404_problem(client: Client) -> None:
    for url in ("/v1/schemas/expulsion.expelled", "/v1/schemas/expulsion.reported?version=9"):
        missing = await client.get(url)
        assert missing.status_code == 404, url
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["type"] == "urn:legation:problem:not-found"


async def test_schemas_need_no_key_even_when_reads_do(dsn: str) -> None:
    app = create_app(Settings(database_url=dsn, public_reads=False))
    async with AsyncTestClient(app=app) as anonymous:
        assert (await anonymous.get("/v1/schemas/incident.retracted")).status_code == 200
        assert (await anonymous.get("/v1/events")).status_code == 401
