"""A subscription's lease on its next event: claimed, renewed, and the attempt recorded.

Each of these runs inside a short transaction the caller holds; the POST
between claim and record holds none.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID, uuid4

import asyncpg
import msgspec

from service.log.store import LogFilter
from service.subscribers.fanout import LiveEvent, matches, read_live
from service.subscribers.webhook_posts import TIMEOUT, Outcome

if TYPE_CHECKING:
    from service.log.store import Connection

SCAN_PAGE: Final = 500
# About 5 s, 30 s, 2 min, 15 min, 1 h, then hourly, for 3 days in all.
BACKOFF: Final = (5.0, 30.0, 120.0, 900.0, 3600.0)
GIVE_UP_AFTER: Final = timedelta(days=3)
# A lease that has run out is taken over: its holder crashed, or hung past its deadline.
DUE = """
SELECT id, url, secret, types, countries, position, attempt, failing_since
  FROM subscriptions
 WHERE active AND next_attempt_at <= now() AND position < $1
   AND (leased_until IS NULL OR leased_until < now())
 ORDER BY next_attempt_at
 LIMIT 1
 FOR UPDATE SKIP LOCKED
"""
# Outlives the attempt's own deadline, so a live holder never loses its lease.
LEASE: Final = timedelta(seconds=3 * TIMEOUT)


class Claim(msgspec.Struct, frozen=True):
    """One subscription's next event, leased to this process until delivered or expired."""

    row: Any  # the subscription's row as claimed (asyncpg.Record)
    live: LiveEvent
    lease: UUID
    attempt: int  # attempts made at this event so far
    failing_since: Any
    # The rest of the log page the event was read from: once the event is acknowledged,
    # the lease is renewed for the next one of these that matches, with no new claim.
    ahead: tuple[LiveEvent, ...] = ()


def retry_delay(attempt: int, scale: float) -> float:
    """Seconds before retry number `attempt` (1-based)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1] * scale


async def claim_next(conn: Connection, head: int) -> Claim | None:
    """Lease the next event up to `head` of a due subscription (None when none is due)."""
    # Subscriptions with nothing for them up to the head are moved past it.
    while (row := await conn.fetchrow(DUE, head)) is not None:
        found = await _next_event(conn, row, head)
        if found is not None:
            lease = uuid4()
            await conn.execute(
                "UPDATE subscriptions SET lease = $2, leased_until = now() + $3 WHERE id = $1",
                row["id"],
                lease,
                LEASE,
            )
            live, ahead = found
            return Claim(row, live, lease, row["attempt"], row["failing_since"], ahead)
    return None


async def _next_event(
    conn: Connection, row: asyncpg.Record, head: int
) -> tuple[LiveEvent, tuple[LiveEvent, ...]] | None:
    filters = LogFilter(tuple(row["types"]), tuple(row["countries"]))
    scanned = row["position"]
    while scanned < head:
        page = await read_live(conn, scanned, SCAN_PAGE)
        if not page:
            break
        for index, live in enumerate(page):
            if matches(live, filters):
                await _advance(conn, row["id"], scanned)
                return live, tuple(page[index + 1 :])
            scanned = live.event.position
    # Nothing for this subscriber up to the head: skip past it.
    await _advance(conn, row["id"], scanned)
    return None


async def _advance(conn: Connection, subscription: Any, position: int) -> None:
    await conn.execute(
        "UPDATE subscriptions SET position = $2 WHERE id = $1 AND position < $2",
        subscription,
        position,
    )


async def still_held(conn: Connection, claim: Claim) -> bool | None:
    """Whether the subscription is active, locked; None when the lease is no longer ours."""
    active: bool | None = await conn.fetchval(
        "SELECT active FROM subscriptions WHERE id = $1 AND lease = $2 FOR UPDATE",
        claim.row["id"],
        claim.lease,
    )
    return active


async def renewed(conn: Connection, claim: Claim) -> Claim | None:
    """Lease the next matching event of the page already read, if there is one."""
    subscription = claim.row["id"]
    filters = LogFilter(tuple(claim.row["types"]), tuple(claim.row["countries"]))
    passed = claim.live.event.position
    for index, live in enumerate(claim.ahead):
        if matches(live, filters):
            await conn.execute(
                "UPDATE subscriptions SET position = greatest(position, $2), lease = $3,"
                " leased_until = now() + $4 WHERE id = $1",
                subscription,
                passed,
                claim.lease,
                LEASE,
            )
            return Claim(claim.row, live, claim.lease, 0, None, claim.ahead[index + 1 :])
        passed = live.event.position
    await _advance(conn, subscription, passed)
    return None


async def record(conn: Connection, claim: Claim, outcome: Outcome, retry_scale: float) -> None:
    """Record the attempt, and move the subscription on, retry it later or deactivate it."""
    row, live = claim.row, claim.live
    attempt = claim.attempt + 1
    if outcome.acknowledged:
        await conn.execute(
            "UPDATE subscriptions SET position = greatest(position, $2), attempt = 0,"
            " failing_since = NULL, next_attempt_at = now(), lease = NULL,"
            " leased_until = NULL WHERE id = $1",
            row["id"],
            live.event.position,
        )
        retry_at = None
    else:
        retry_at = await _failed(conn, claim, attempt, outcome, retry_scale)
    await conn.execute(
        "INSERT INTO deliveries (subscription_id, event_id, position, attempt, status_code,"
        " latency_ms, error, next_retry_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        row["id"],
        live.event.id,
        live.event.position,
        attempt,
        outcome.status_code,
        outcome.latency_ms,
        outcome.error,
        retry_at,
    )


async def _failed(
    conn: Connection, claim: Claim, attempt: int, outcome: Outcome, retry_scale: float
) -> Any:
    row = claim.row
    gone = outcome.status_code == 410
    expired = await conn.fetchval(
        "SELECT coalesce($1, now()) < now() - $2::interval", claim.failing_since, GIVE_UP_AFTER
    )
    if gone or expired:
        reason = "the receiver answered 410 Gone" if gone else "retries ran out after 3 days"
        await conn.execute(
            "UPDATE subscriptions SET active = false, deactivated_reason = $2, attempt = $3,"
            " lease = NULL, leased_until = NULL WHERE id = $1",
            row["id"],
            reason,
            attempt,
        )
        return None
    delay = retry_delay(attempt, retry_scale)
    retry_at: Any = await conn.fetchval(
        "UPDATE subscriptions SET attempt = $2, failing_since = coalesce(failing_since, now()),"
        " next_attempt_at = clock_timestamp() + make_interval(secs => $3), lease = NULL,"
        " leased_until = NULL WHERE id = $1 RETURNING next_attempt_at",
        row["id"],
        attempt,
        delay,
    )
    return retry_at
