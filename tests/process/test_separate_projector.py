"""`legation project` in a process of its own beside serve with LEGATION_PROJECTOR=separate."""

from __future__ import annotations

import asyncio
import os
import subprocess

import httpx

from tests.factories import expulsion
from tests.process.test_replicas import eventually, holders, named
from tests.servers import LEGATION, Server, start, stop

SEPARATE = {"rate_limit": "0", "projector": "separate"}


def start_projector(dsn: str) -> Server:
    env = os.environ | {"DATABASE_URL": named(dsn, "projector")}
    return subprocess.Popen([str(LEGATION), "project"], env=env, stderr=subprocess.DEVNULL)


async def holding(dsn: str, expected: list[str]) -> bool | None:
    return True if await holders(dsn) == expected else None


async def expel(http: httpx.AsyncClient, count: int) -> int:
    """RU expels `count` NL diplomats; the position the report landed at."""
    response = await http.post("/v1/incidents", json=expulsion(count=count))
    assert response.status_code == 201, response.text
    return int(response.headers["legation-position"])


async def expelled(http: httpx.AsyncClient, position: int) -> int:
    """The RU-NL ledger's expelled total once the read models include `position`."""
    response = await http.get("/v1/relations/RU/NL", params={"min_position": position})
    assert response.status_code == 200, response.text
    assert response.json()["position"] == position
    total: int = response.json()["relation"]["expelled_foreign_diplomats"]
    return total


async def test_a_separate_projector_projects_for_serve_and_resumes_after_a_kill(
    dsn: str, admin_key: str
) -> None:
    projector = start_projector(dsn)
    base, web = await asyncio.to_thread(start, named(dsn, "web"), SEPARATE)
    headers = {"Authorization": f"Bearer {admin_key}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
            await eventually(lambda: holding(dsn, ["projector"]))
            assert await expelled(http, await expel(http, 3)) == 3
            # Killed, the projector leaves the read models behind; serve does not take over.
            projector.kill()
            projector.wait()
            await eventually(lambda: holding(dsn, []))
            position = await expel(http, 4)
            lagging = await http.get("/v1/relations/RU/NL")
            assert int(lagging.headers["legation-position"]) < position
            assert await holders(dsn) == []
            projector = start_projector(dsn)
            assert await expelled(http, position) == 7  # resumed, nothing counted twice

            # Without min_position too, serve learns the new checkpoint by itself.
            async def caught_up() -> bool | None:
                latest = await http.get("/v1/relations/RU/NL")
                return True if latest.json()["position"] == position else None

            await eventually(caught_up)
    finally:
        await asyncio.to_thread(stop, web)
        assert await asyncio.to_thread(stop, projector) == 0  # SIGTERM: a clean exit


def test_project_needs_the_database_of_the_serve_processes() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    finished = subprocess.run(
        [str(LEGATION), "project"], env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 2
    assert "DATABASE_URL" in finished.stderr
