"""Acknowledgements recorded together: each subscription's row moves on its own terms.

Three subscriptions leased at once and acknowledged in one statement: one still
holds its lease and goes on to its next event; one was changed by its owner
meanwhile (epoch) and only gives its lease back; one lost its lease to another
holder and is not touched at all.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from service.log.store import append, head_position
from service.projections.standing_changes import StandingChanges
from service.subscribers.webhook_acks import Acknowledged, Recorded, acknowledged
from service.subscribers.webhook_leases import Claim, claim_next, following
from service.subscribers.webhook_posts import Outcome
from tests.factories import event, stream

OK = Outcome(200, 3, None)


async def _claims(pool: asyncpg.Pool[Any], count: int) -> list[Claim]:
    claims = []
    async with pool.acquire() as conn:
        for _ in range(count):
            async with conn.transaction():
                claim = await claim_next(conn, await head_position(conn), StandingChanges())
            assert claim is not None
            claims.append(claim)
    return claims


async def test_acknowledgements_recorded_together_each_on_its_own_terms(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        await append(conn, stream(), 0, [event(1), event(2)])
    for _ in range(3):
        await pool.execute(
            "INSERT INTO subscriptions (id, url, secret, position) "
            "VALUES (gen_random_uuid(), 'http://127.0.0.1:9/hooks', 's', 0)"
        )
    held, changed, lost = await _claims(pool, 3)
    assert all(claim.live.event.position == 1 for claim in (held, changed, lost))
    await pool.execute(
        "UPDATE subscriptions SET epoch = epoch + 1 WHERE id = $1", changed.row["id"]
    )
    taker = await pool.fetchval(
        "UPDATE subscriptions SET lease = gen_random_uuid() WHERE id = $1 RETURNING lease",
        lost.row["id"],
    )

    acks = [
        Acknowledged(c, OK, await following(None, c, StandingChanges()))
        for c in (held, changed, lost)
    ]
    async with pool.acquire() as conn:
        recorded = await acknowledged(conn, acks)

    assert recorded == {
        (held.row["id"], held.lease): Recorded(current=True, renewed=True),
        (changed.row["id"], changed.lease): Recorded(current=False, renewed=False),
    }
    rows = {
        row["id"]: row
        for row in await pool.fetch(
            "SELECT id, position, part, lease, leased_until FROM subscriptions"
        )
    }
    # Past event 1, leased on for event 2 (the next one of the page read).
    assert rows[held.row["id"]]["position"] == 1
    assert rows[held.row["id"]]["lease"] == held.lease
    assert rows[held.row["id"]]["leased_until"] is not None
    # Where the owner's change left it, the lease given back.
    assert rows[changed.row["id"]]["position"] == 0
    assert rows[changed.row["id"]]["lease"] is None
    # The other holder's, untouched.
    assert rows[lost.row["id"]]["position"] == 0
    assert rows[lost.row["id"]]["lease"] == taker
    attempts = await pool.fetch(
        "SELECT subscription_id, position, attempt, status_code, message_id FROM deliveries"
    )
    assert sorted(
        (a["subscription_id"], a["position"], a["attempt"], a["status_code"]) for a in attempts
    ) == sorted((claim.row["id"], 1, 1, 200) for claim in (held, changed))
    assert {a["message_id"] for a in attempts} == {held.message.id}
