"""The demo's seed report (examples/april-2022.ndjson), posted through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

SEED_FILE = Path(__file__).parents[1] / "examples" / "april-2022.ndjson"
BELGIUM = "5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b03"  # Russia 21 Belgian, disputed 12 to 21
NETHERLANDS = "5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b04"  # Russia 15 Dutch
EU_19 = "5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b01"
RUSSIA_18 = "5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b02"


def reports() -> list[dict[str, Any]]:
    """Every report of the seed file."""
    return [json.loads(line) for line in SEED_FILE.read_text().splitlines() if line.strip()]


async def post_seed(client: AsyncTestClient[Any]) -> int:
    """Post the seed report; the position of its last event."""
    position = 0
    for body in reports():
        answer = await client.post("/v1/incidents", json=body)
        assert answer.status_code == 201, answer.text
        position = int(answer.headers["legation-position"])
    return position
