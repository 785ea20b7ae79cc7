"""The fan-out in the app under the test client: its head follows the log."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.factories import expulsion
from tests.http.test_webhooks import until


async def test_with_no_subscriber_the_fanout_head_follows_the_log_not_notifications(
    client: Any, pool: asyncpg.Pool[Any]
) -> None:
    state = client.app.state  # what the lifespan started
    # The app runs on the test client's own loop and thread: poll, never await its events.
    await until(state.doorbell.connected.is_set)
    posted = await client.post("/v1/incidents", json=expulsion())
    position = int(posted.headers["legation-position"])
    await until(lambda: state.fanout.head >= position)
    assert state.fanout.head == position
    # A notification only rings: whatever it says, the head is read from the log.
    await pool.execute("NOTIFY legation_events, '999999999'")
    await asyncio.sleep(0.5)
    assert state.fanout.head == position
