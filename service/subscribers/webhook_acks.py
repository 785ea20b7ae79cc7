"""Acknowledged webhook attempts, recorded in batches: one statement for all that wait.

Every subscription in delivery has at most one attempt waiting here at a time (its
next POST waits for the outcome). While one batch is being written the next ones
queue, so under load many subscriptions' records share a round trip and a commit,
and a lone subscription's record goes out at once, with no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from service.subscribers.webhook_leases import LEASE, Claim, Next
from service.subscribers.webhook_posts import Outcome

if TYPE_CHECKING:
    import asyncpg

    from service.log.store import Connection

# Acknowledged attempts of any number of subscriptions (one each) in one statement, with
# no transaction round trips: each row, locked in id order while its lease is still
# ours, moves on past the message (and, while active, to the next message's position
# with its lease renewed); one whose epoch a PATCH changed moves nothing and gives its
# lease back; every attempt held is logged. `part` counts the message's event's
# acknowledged messages, whether or not the lease goes on within that event.
ACKNOWLEDGED = """
WITH given AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::bigint[], $5::int[],
                         $6::bigint[], $7::bool[], $8::uuid[], $9::bigint[], $10::int[],
                         $11::int[], $12::int[], $13::uuid[], $14::text[])
        AS g(id, lease, epoch, acked, part, passed, renew, event_id, position, attempt,
             status_code, latency_ms, message_id, type)
), held AS (
    SELECT g.*, s.active, s.epoch = g.epoch AS current
      FROM given g JOIN subscriptions s ON s.id = g.id AND s.lease = g.lease
     ORDER BY s.id
       FOR UPDATE OF s
), moved AS (
    UPDATE subscriptions s
       SET position = CASE WHEN NOT h.current THEN s.position
                           WHEN h.active THEN greatest(s.position, h.passed)
                           ELSE greatest(s.position, h.acked) END,
           part = CASE WHEN h.current THEN h.part ELSE s.part END,
           attempt = CASE WHEN h.current THEN 0 ELSE s.attempt END,
           failing_since = CASE WHEN h.current THEN NULL ELSE s.failing_since END,
           next_attempt_at = now(),
           lease = CASE WHEN h.current AND h.active AND h.renew THEN h.lease END,
           leased_until = CASE WHEN h.current AND h.active AND h.renew THEN now() + $15 END
      FROM held h
     WHERE s.id = h.id
 RETURNING s.id, s.lease IS NOT NULL AS renewed
), logged AS (
    INSERT INTO deliveries (subscription_id, event_id, position, attempt, status_code,
                            latency_ms, message_id, type)
    SELECT id, event_id, position, attempt, status_code, latency_ms, message_id, type FROM held
)
SELECT h.id, h.lease, h.current, m.renewed FROM held h JOIN moved m USING (id)
"""


class Acknowledged(msgspec.Struct, frozen=True):
    """An acknowledged attempt to record, and where its lease goes next."""

    claim: Claim
    outcome: Outcome
    next: Next


class Recorded(msgspec.Struct, frozen=True):
    """How an acknowledged attempt was recorded: under its epoch (`current`, else a PATCH
    came between), and whether its lease was renewed for the next message."""

    current: bool
    renewed: bool


async def acknowledged(
    conn: Connection, acks: list[Acknowledged]
) -> dict[tuple[UUID, UUID], Recorded]:
    """Record acknowledged attempts, at most one a lease; by subscription and lease, those
    whose lease was still held (the others' were taken over, and their outcome is not
    recorded)."""
    columns: list[list[Any]] = [[] for _ in range(14)]
    for ack in acks:
        claim, message = ack.claim, ack.claim.message
        # Acknowledged within its event: the cursor stays before the event and counts it.
        acked, part = (
            (message.position, 0) if message.last else (message.position - 1, message.index + 1)
        )
        row = (
            claim.row["id"],
            claim.lease,
            claim.row["epoch"],
            acked,
            part,
            max(acked, ack.next.passed),
            ack.next.claim is not None,
            message.live.event.id,
            message.position,
            claim.attempt + 1,
            ack.outcome.status_code,
            ack.outcome.latency_ms,
            message.id,
            message.type,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    rows = await conn.fetch(ACKNOWLEDGED, *columns, LEASE)
    # By subscription and lease: an attempt whose lease ran out and was taken anew by this
    # same process may wait in the batch beside the new holder's.
    return {(row["id"], row["lease"]): Recorded(row["current"], row["renewed"]) for row in rows}


class Acknowledgements:
    """Writes acknowledged attempts as they come, all that waited in one statement."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool
        self._waiting: list[tuple[Acknowledged, asyncio.Future[Recorded | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, ack: Acknowledged) -> Recorded | None:
        """Record `ack`; how, or None when its lease was no longer held."""
        done: asyncio.Future[Recorded | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((ack, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="legation-webhook-acks")
        return await done

    async def stop(self) -> None:
        """Stop writing; what waits is not recorded (its lease runs out, it is sent again)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._pool.acquire() as conn:
                    recorded = await acknowledged(conn, [ack for ack, _ in batch])
            except BaseException as exc:  # each waiter fails as its own write would
                for _, done in batch:
                    if isinstance(exc, asyncio.CancelledError):
                        done.cancel()
                    elif not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    self._writer = None
                    raise
                continue
            for ack, done in batch:
                if not done.done():
                    done.set_result(recorded.get((ack.claim.row["id"], ack.claim.lease)))
        self._writer = None
