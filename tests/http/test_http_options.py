"""OPTIONS lists every method of a path (Litestar 2 alone lists only the first one registered),
HEAD beside GET (the edge answers it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from tests.domain.test_auth import routes


async def test_options_lists_every_method_of_each_path(client: AsyncTestClient[Any]) -> None:
    expected: dict[str, set[str]] = defaultdict(lambda: {"OPTIONS"})
    for method, path, _ in routes(create_app(Settings(database_url="postgresql://unused@x/x"))):
        expected[path] |= {method, "HEAD"} if method == "GET" else {method}
    assert {"GET", "HEAD", "POST"} <= expected["/v1/incidents"]
    for path, methods in expected.items():
        response = await client.options(path)
        assert response.status_code == 204, path
        assert set(response.headers["allow"].split(", ")) == methods, path
