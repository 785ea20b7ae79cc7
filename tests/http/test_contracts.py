"""The app serves the committed OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from service.ops.contracts import OPENAPI_FILE


async def test_the_app_serves_the_committed_document(client: AsyncTestClient[Any]) -> None:
    served = await client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(OPENAPI_FILE.read_bytes())
    docs = await client.get("/schema")
    assert docs.status_code == 200
    assert "<html" in docs.text.lower()
