"""NOTIFY from a login with no grants at all: a doorbell rings, positions come from tables."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from tests.process.test_separate_projector import SEPARATE, expel, start_projector
from tests.process.test_sse import KEYS, collect, post
from tests.servers import start, stop

FORGED = 999_999_999


@pytest.fixture
async def stranger(dsn: str) -> AsyncIterator[str]:
    """A DSN for a fresh role that may log in and nothing else (roles are cluster-wide)."""
    role = f"stranger_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        parts = urlsplit(dsn)
        # A socket DSN (the embedded server) names no host: keep it empty, not "None".
        port = f":{parts.port}" if parts.port else ""
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname or ''}{port}"))
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def forge(stranger: str, channel: str) -> None:
    conn = await asyncpg.connect(stranger)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM events")  # it may read nothing ...
        await conn.execute(f"NOTIFY {channel}, '{FORGED}'")  # ... yet may ring
    finally:
        await conn.close()


async def test_streams_opened_after_a_forged_head_still_follow_the_log(
    dsn: str, admin_key: str, stranger: str
) -> None:
    KEYS[0] = admin_key
    base, server = await asyncio.to_thread(start, dsn, {"rate_limit": "0"})
    try:
        head = await asyncio.to_thread(post, base)
        await forge(stranger, "legation_events")
        await asyncio.sleep(1.5)  # past the fan-out's poll: whatever it makes of the bell
        url = f"{base}/v1/events/stream?after={head}"
        following = asyncio.create_task(collect(url, 1, within=10))
        await asyncio.sleep(0.5)  # connected and live
        appended = await asyncio.to_thread(post, base, expelled="BE")
        assert [frame.id for frame in await following] == [appended]
    finally:
        await asyncio.to_thread(stop, server)


async def test_a_forged_checkpoint_neither_shows_nor_answers_reads_that_wait(
    dsn: str, admin_key: str, stranger: str
) -> None:
    # No `legation project` yet: the read models stay at 0 whatever anyone announces.
    settings = SEPARATE | {"read_wait_seconds": "1"}
    base, web = await asyncio.to_thread(start, dsn, settings)
    projector = None
    headers = {"Authorization": f"Bearer {admin_key}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
            position = await expel(http, 3)
            await forge(stranger, "legation_projected")
            for _ in range(10):  # for a second, in case the forgery takes a moment to land
                read = await http.get("/v1/relations/RU/NL")
                assert read.headers["legation-position"] == "0"
                ready = (await http.get("/ready")).json()
                assert ready["projected"] == 0, ready
                await asyncio.sleep(0.1)
            waited = await http.get("/v1/relations/RU/NL", params={"min_position": position})
            assert waited.status_code == 503, waited.text
            assert "retry-after" in waited.headers
            projector = start_projector(dsn)
            # The real projection, once it is there: a process start may outlast the 1 s
            # wait on a busy machine, so 503s are asked again for a while.
            for _ in range(40):
                answer = await http.get("/v1/relations/RU/NL", params={"min_position": position})
                if answer.status_code != 503:
                    break
            assert answer.status_code == 200, answer.text
            assert answer.json()["relation"]["expelled_foreign_diplomats"] == 3
    finally:
        await asyncio.to_thread(stop, web)
        if projector is not None:
            await asyncio.to_thread(stop, projector)
