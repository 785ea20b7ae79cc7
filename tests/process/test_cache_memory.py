"""A flood of distinct `as_of`/`known_at` reads holds a real server's memory to the cache bound.

Issue 12, item 1: each (route, as_of, known_at) answer was kept by count (2,048 in
the standings cache, 4,096 more at the edge), so a few hundred distinct dates of
a big list grew the process by hundreds of megabytes, never freed.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import httpx
import msgspec

from tests.conftest import make_key
from tests.factories import expulsion
from tests.servers import start, stop

MIB = 1 << 20
CACHE_BYTES = 4 * MIB
# What the interpreter, the allocator and asyncpg may keep beyond the cache after
# hundreds of ~300 KB answers (measured: about 10 MiB); keeping every answer
# grows the process by about 100 MiB.
ALLOWANCE = 28 * MIB
INCIDENTS = 700
TIMELINE = "/v1/countries/RU/timeline"


def rss(pid: int) -> int:
    """The resident set size of process `pid`, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def reports() -> bytes:
    """Incidents involving RU, each with a long summary: a full timeline page is ~300 KB."""
    summary = "A long account of the expulsion and its diplomatic context. " * 6
    bodies = [
        expulsion(
            occurred_on=str(date(2022, 1, 1) + timedelta(days=i % 300)),
            summary=summary,
            deadline=None,
        )
        for i in range(INCIDENTS)
    ]
    return b"\n".join(msgspec.json.encode(body) for body in bodies)


def flood(http: httpx.Client, values: list[dict[str, str | int]]) -> None:
    for params in values:
        response = http.get(TIMELINE, params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 500


def test_distinct_as_of_and_known_at_reads_stay_within_the_cache_bound(dsn: str) -> None:
    key = asyncio.run(make_key(dsn, name="flood"))
    settings = {"cache_bytes": str(CACHE_BYTES), "rate_limit": "0"}
    base, server = start(dsn, settings)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            written = http.post(
                "/v1/incidents:batch",
                content=reports(),
                headers={"content-type": "application/x-ndjson", "authorization": f"Bearer {key}"},
            )
            assert written.status_code == 201, written.text
            head = written.json()["last_position"]
            http.get(TIMELINE, params={"min_position": head})
            dates = [str(date(2023, 1, 1) + timedelta(days=i)) for i in range(260)]
            # Warm up: the first answers fill the cache and the allocator's pools.
            flood(http, [{"as_of": day} for day in dates[:30]])
            before = rss(server.pid)
            flood(http, [{"as_of": day} for day in dates[30:]])
            flood(http, [{"known_at": position} for position in range(560, head + 1)])
            after = rss(server.pid)
    finally:
        stop(server)
    growth = after - before
    assert growth <= CACHE_BYTES + ALLOWANCE, f"grew {growth / MIB:.1f} MiB"
