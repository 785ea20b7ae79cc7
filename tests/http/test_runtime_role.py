"""The service runs under the runtime role."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.projections.rebuild import rebuild
from tests.conftest import authorised
from tests.db.test_runtime_role import as_runtime
from tests.factories import expulsion


async def test_the_service_runs_under_the_runtime_role(dsn: str, admin_key: str) -> None:
    app = create_app(Settings(database_url=as_runtime(dsn)))
    async with AsyncTestClient(app=app) as client:
        authorised(client, admin_key)
        created = await client.post("/v1/incidents", json=expulsion())
        assert created.status_code == 201
        position = created.headers["legation-position"]
        standing = await client.get("/v1/countries/RU", params={"min_position": position})
        assert standing.json()["expulsions"]["expelled_foreign_diplomats"] == 15
        assert (await client.get("/ready")).status_code == 200
    await rebuild(dsn)  # as the migrating role; the runtime keeps its rights on the new tables
    async with AsyncTestClient(app=create_app(Settings(database_url=as_runtime(dsn)))) as client:
        authorised(client, admin_key)
        again = await client.post("/v1/incidents", json=expulsion(count=2))
        assert again.status_code == 201
        after = await client.get(
            "/v1/countries/RU", params={"min_position": again.headers["legation-position"]}
        )
        assert after.json()["expulsions"]["expelled_foreign_diplomats"] == 17
