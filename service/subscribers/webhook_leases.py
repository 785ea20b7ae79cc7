"""A subscription's lease on its next message: claimed, renewed, and a failed attempt recorded.

Each statement here runs inside a short transaction the caller holds; the POST
between claim and record holds none. An acknowledged attempt is recorded, and the
lease renewed for the message `following` finds, by webhook_acks' one statement.

A subscription's cursor is `position` (every event up to it is done) and `part`
(how many messages of the next event were acknowledged: an event may bring
several, see webhook_messages). A subscription with the `standings` topic never
goes past the read models' checkpoint, so what it is told can be read at once.
A PATCH that moves the cursor or changes what is sent where bumps `epoch`: the
holder of a lease taken before it records its attempt but moves nothing, and
gives the lease back, so the next claim starts where the PATCH said, and the
subscription still has one delivery at a time, in order.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID, uuid4

import asyncpg
import msgspec

from service.projections.projector import CHECKPOINT
from service.projections.standing_changes import StandingChanges
from service.subscribers.fanout import LiveEvent, read_live
from service.subscribers.webhook_messages import (
    Message,
    Wants,
    event_message,
    messages,
    wants,
)
from service.subscribers.webhook_posts import TIMEOUT, Outcome

if TYPE_CHECKING:
    from service.log.store import Connection

SCAN_PAGE: Final = 500
# About 5 s, 30 s, 2 min, 15 min, 1 h, then hourly, for 3 days in all.
BACKOFF: Final = (5.0, 30.0, 120.0, 900.0, 3600.0)
GIVE_UP_AFTER: Final = timedelta(days=3)
# How far a subscription may go: the log's head ($1), or for standings the checkpoint.
BOUND: Final = f"""CASE WHEN 'standings' = ANY(topics)
            THEN (SELECT position FROM projection_checkpoints WHERE name = '{CHECKPOINT}')
            ELSE $1 END"""
# A lease that has run out is taken over: its holder crashed, or hung past its deadline.
# The previous secret is read only while it is still honoured.
DUE = f"""
SELECT id, url, secret,
       CASE WHEN previous_secret_until > now() THEN previous_secret END AS previous_secret,
       types, countries, topics, position, part, epoch, attempt, failing_since,
       {BOUND} AS bound
  FROM subscriptions
 WHERE active AND next_attempt_at <= now() AND position < {BOUND}
   AND (leased_until IS NULL OR leased_until < now())
 ORDER BY next_attempt_at
 LIMIT 1
 FOR UPDATE SKIP LOCKED
"""
# Outlives the attempt's own deadline, so a live holder never loses its lease.
LEASE: Final = timedelta(seconds=3 * TIMEOUT)


class Claim(msgspec.Struct, frozen=True):
    """One subscription's next message, leased to this process until delivered or expired."""

    row: Any  # the subscription's row as claimed (asyncpg.Record)
    message: Message
    lease: UUID
    attempt: int  # attempts made at this message so far
    failing_since: Any
    # What follows in the log page the event was read from: once the message is
    # acknowledged, the lease is renewed for the next one, with no new claim.
    following: tuple[Message, ...] = ()  # the rest of this event's messages
    ahead: tuple[LiveEvent, ...] = ()  # the page's later events
    wanted: Wants | None = None  # what the subscription receives, read from `row` once

    @property
    def live(self) -> LiveEvent:
        """The event the message is about."""
        return self.message.live


def retry_delay(attempt: int, scale: float) -> float:
    """Seconds before retry number `attempt` (1-based)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1] * scale


async def claim_next(conn: Connection, head: int, changes: StandingChanges) -> Claim | None:
    """Lease the next message of a due subscription (None when none is due)."""
    # Subscriptions with nothing for them up to their bound are moved past it.
    while (row := await conn.fetchrow(DUE, head)) is not None:
        found = await _next_message(conn, row, changes)
        if found is not None:
            lease = uuid4()
            await conn.execute(
                "UPDATE subscriptions SET lease = $2, leased_until = now() + $3 WHERE id = $1",
                row["id"],
                lease,
                LEASE,
            )
            message, following, ahead = found
            attempt, failing = row["attempt"], row["failing_since"]
            return Claim(row, message, lease, attempt, failing, following, ahead, wants(row))
    return None


Found = tuple[Message, tuple[Message, ...], tuple[LiveEvent, ...]]


async def _next_message(
    conn: Connection, row: asyncpg.Record, changes: StandingChanges
) -> Found | None:
    wanted, bound = wants(row), row["bound"]
    scanned, done = row["position"], row["part"]
    while scanned < bound:
        page = [
            live
            for live in await read_live(conn, scanned, SCAN_PAGE)
            if live.event.position <= bound
        ]
        if not page:
            break
        for index, live in enumerate(page):
            # `part` counts the acknowledged messages of the first event after `position`.
            sent, done = (await messages(conn, live, wanted, changes))[done:], 0
            if sent:
                await _advance(conn, row["id"], scanned)
                return sent[0], tuple(sent[1:]), tuple(page[index + 1 :])
            scanned = live.event.position
    # Nothing for this subscriber up to its bound: skip past it.
    await _advance(conn, row["id"], scanned)
    return None


async def _advance(conn: Connection, subscription: Any, position: int) -> None:
    await conn.execute(
        "UPDATE subscriptions SET position = $2, part = 0 WHERE id = $1 AND position < $2",
        subscription,
        position,
    )


class Held(msgspec.Struct, frozen=True):
    """The subscription as its lease holder finds it when the attempt is over."""

    active: bool
    epoch: int


async def still_held(conn: Connection, claim: Claim) -> Held | None:
    """Whether the subscription is active and its epoch, locked; None when the lease
    is no longer ours."""
    row = await conn.fetchrow(
        "SELECT active, epoch FROM subscriptions WHERE id = $1 AND lease = $2 FOR UPDATE",
        claim.row["id"],
        claim.lease,
    )
    return None if row is None else Held(row["active"], row["epoch"])


class Next(msgspec.Struct, frozen=True):
    """Where an acknowledged message leaves its lease: the next message of the page
    already read (None when the page holds none), and the position passed to reach it."""

    claim: Claim | None
    passed: int


async def following(conn: Connection | None, claim: Claim, changes: StandingChanges) -> Next:
    """The next message of the page already read, for once `claim` is acknowledged.

    `conn` is read from only for a subscription with the standings topic."""
    wanted = claim.wanted or wants(claim.row)
    if claim.following:
        message, *rest = claim.following
        nxt = msgspec.structs.replace(
            claim, message=message, attempt=0, failing_since=None, following=tuple(rest)
        )
        return Next(nxt, claim.live.event.position - 1)
    passed = claim.live.event.position
    for index, live in enumerate(claim.ahead):
        # An event alone needs no query: no coroutine per event of the page.
        if wanted.standings:
            assert conn is not None, "the standings topic reads the standings' changes"
            sent = await messages(conn, live, wanted, changes)
        else:
            sent = event_message(live, wanted)
        if sent:
            nxt = msgspec.structs.replace(
                claim,
                message=sent[0],
                attempt=0,
                failing_since=None,
                following=tuple(sent[1:]),
                ahead=claim.ahead[index + 1 :],
            )
            return Next(nxt, passed)
        passed = live.event.position
    return Next(None, passed)


async def record_failure(
    conn: Connection, claim: Claim, outcome: Outcome, retry_scale: float
) -> None:
    """Record a failed attempt: retry the message later, or deactivate the subscription."""
    retry_at = await _failed(conn, claim, claim.attempt + 1, outcome, retry_scale)
    await attempted(conn, claim, outcome, claim.attempt + 1, retry_at)


async def superseded(conn: Connection, claim: Claim, outcome: Outcome) -> None:
    """A PATCH changed the subscription while the message was in flight: record the
    attempt, give the lease back, and leave the cursor where the PATCH put it."""
    await conn.execute(
        "UPDATE subscriptions SET lease = NULL, leased_until = NULL, next_attempt_at = now()"
        " WHERE id = $1",
        claim.row["id"],
    )
    await attempted(conn, claim, outcome, claim.attempt + 1, None)


async def attempted(
    conn: Connection, claim: Claim, outcome: Outcome, attempt: int, retry_at: Any
) -> None:
    """Add the attempt to the subscription's delivery log."""
    message = claim.message
    await conn.execute(
        "INSERT INTO deliveries (subscription_id, event_id, position, attempt, status_code,"
        " latency_ms, error, next_retry_at, message_id, type)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        claim.row["id"],
        message.live.event.id,
        message.position,
        attempt,
        outcome.status_code,
        outcome.latency_ms,
        outcome.error,
        retry_at,
        message.id,
        message.type,
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
