"""Webhook delivery: CloudEvents 1.0 signed per Standard Webhooks, in log order, with retries.

A subscription's next event is claimed with a lease: a short transaction (FOR
UPDATE SKIP LOCKED, so processes share the work) marks it leased until a while
from now. The POST is made with no transaction open, and its outcome recorded
only while the lease is still ours: an acknowledgement in one statement, which
the acknowledgements of other subscriptions waiting at that moment share, a
failure in a short transaction. So one
subscription is never delivered to twice at once and gets its events in log
order, at least once: a crashed worker's lease runs out and another takes
over. Once a message is acknowledged, the lease goes on to the next message
of the log page already read, with no new claim. The deliverer moves a
subscription's position only forward, and only past acknowledged (2xx) messages
or events with nothing for it; only its owner moves it elsewhere (PATCH `after`),
and a delivery in flight then moves nothing. Attempts older than the retention
are pruned in the background.

What is sent for an event (the event, the standings it changed) is
webhook_messages', the body and its signature cloud_events', the POST
webhook_posts' (over a subscription's keep-alive connection, webhook_connections'),
the lease's statements webhook_leases', and the acknowledgements' webhook_acks';
here is the worker that runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID, uuid4

import asyncpg

from service.log.doorbell import cancel
from service.log.store import head_position
from service.projections.standing_changes import StandingChanges
from service.subscribers.cloud_events import ping_event
from service.subscribers.webhook_acks import Acknowledged, Acknowledgements
from service.subscribers.webhook_connections import Connections
from service.subscribers.webhook_leases import (
    BACKOFF,
    BOUND,
    Claim,
    claim_next,
    following,
    record_failure,
    still_held,
    superseded,
)
from service.subscribers.webhook_messages import wants
from service.subscribers.webhook_posts import Outcome, post

if TYPE_CHECKING:
    from service.config import Settings
    from service.log.doorbell import Bell

log = logging.getLogger("legation.webhooks")
# Deliveries in flight at once per process; each holds a subscription, no database connection
# (more than 16: twenty busy subscriptions took turns, a page of the log each).
WORKERS: Final = 32

# One round trip, outside any transaction: most doorbell rings find nothing due,
# and where no subscription is active at all the next rings need not ask for a while.
HEAD: Final = "(SELECT coalesce(max(position), 0) FROM events)"
ANY_DUE = f"""
SELECT EXISTS (SELECT 1 FROM subscriptions WHERE active),
       EXISTS (SELECT 1 FROM subscriptions
                WHERE active AND next_attempt_at <= now()
                  AND (leased_until IS NULL OR leased_until < now())
                  AND position < {BOUND.replace("$1", HEAD)})
"""
# How long "no subscription is active" is believed: one made on another process is
# noticed here within this (that process delivers it meanwhile).
NONE_ACTIVE_SECONDS: Final = 1.0
PRUNE_EVERY: Final = 600.0
PRUNE_BATCH: Final = 1000
PRUNE = """
DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries WHERE attempted_at < now() - make_interval(days => $1)
     LIMIT $2 FOR UPDATE SKIP LOCKED)
"""


class Deliverer:
    """Delivers due webhooks while the app runs.

    One dispatcher claims due subscriptions (a short transaction each) and starts
    a delivery task per claim, up to `workers` at once; a POST holds no
    transaction and no pooled connection, so a receiver that never answers holds
    only its own subscription and one of the slots.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        doorbell: Bell,
        settings: Settings,
        changes: StandingChanges | None = None,
    ) -> None:
        self._pool, self._doorbell, self._settings = pool, doorbell, settings
        self._changes = changes or StandingChanges()  # shared with the standings stream
        self._connections = Connections()  # keep-alive, a subscription's own
        self._tasks: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WORKERS)
        self._wake = asyncio.Event()
        self._acks = Acknowledgements(pool)
        self._leases: set[UUID] = set()  # held by this process; given back at stop
        self._none_active_until = 0.0  # time.monotonic(); see NONE_ACTIVE_SECONDS
        self.delivered = 0
        self.failed = 0
        # Standing notifications wait for the read models: their advance may make some due.
        doorbell.on_projected(self._wake.set)

    def start(self, workers: int = WORKERS) -> None:
        """Start delivering in the background: up to `workers` subscriptions at once."""
        self._slots = asyncio.Semaphore(workers)
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="legation-webhooks"),
            asyncio.create_task(self._listen(), name="legation-webhooks-doorbell"),
            asyncio.create_task(self._prune_often(), name="legation-webhooks-prune"),
        ]

    async def stop(self) -> None:
        """Stop; deliveries in flight are not acknowledged and will be sent again."""
        for task in [*self._tasks, *self._deliveries]:
            await cancel(task)
        self._tasks = []
        await self._acks.stop()
        await self._connections.close()
        if self._leases:  # let another process take them over now, not when they run out
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._pool.execute(
                        "UPDATE subscriptions SET lease = NULL, leased_until = NULL"
                        " WHERE lease = ANY($1::uuid[])",
                        list(self._leases),
                    )

    async def _listen(self) -> None:
        while True:
            await self._doorbell.wait(3600)
            self._wake.set()

    async def _dispatch(self) -> None:
        poll = min(1.0, BACKOFF[0] * self._settings.webhook_retry_scale)
        while True:
            await self._slots.acquire()
            self._wake.clear()
            try:
                claim = await self.claim()
            except Exception:  # keep delivering; the subscription's row is unchanged
                log.exception("claiming a webhook delivery failed")
                claim = None
            if claim is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        await self._wake.wait()
                continue
            task = asyncio.create_task(self._deliver(claim), name="legation-webhook")
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._slots.release()
        self._wake.set()  # its subscription's next event may be due now

    async def _deliver(self, claim: Claim | None) -> None:
        try:
            while claim is not None:
                claim = await self.deliver(claim)
        except Exception:  # the lease runs out and the event is delivered again
            log.exception("webhook delivery failed")

    def subscriptions_changed(self) -> None:
        """A subscription was made or resumed by this process: look at them again now."""
        self._none_active_until = 0.0
        self._wake.set()

    async def deliver_one(self) -> bool:
        """Deliver the next events of one due subscription; False when none is due."""
        claim = await self.claim()
        if claim is None:
            return False
        while claim is not None:
            claim = await self.deliver(claim)
        return True

    async def deliver(self, claim: Claim) -> Claim | None:
        """POST a claimed event (no transaction open), then record the outcome if still ours.

        Gives back the subscription's next event when the lease was renewed for it.
        """
        message = claim.message
        body = message.body(self._settings.public_url or "")
        outcome = await post(self._connections, self._settings, claim.row, str(message.id), body)
        return await self._record(claim, outcome)

    async def ping(self, row: asyncpg.Record) -> Outcome:
        """POST a `legation.ping` to the subscription `row` now, outside log order and any
        lease, signed like its deliveries; nothing is recorded."""
        message_id = uuid4()
        body = ping_event(message_id, row["id"], row["position"])
        return await post(self._connections, self._settings, row, str(message_id), body)

    async def claim(self) -> Claim | None:
        """Lease the next event of a due subscription (None when none is due)."""
        if time.monotonic() < self._none_active_until:
            return None
        active, due = await self._pool.fetchrow(ANY_DUE) or (False, False)
        if not active:
            self._none_active_until = time.monotonic() + NONE_ACTIVE_SECONDS
        if not due:
            return None
        async with self._pool.acquire() as conn, conn.transaction():
            claim = await claim_next(conn, await head_position(conn), self._changes)
            if claim is not None:
                self._leases.add(claim.lease)
        return claim

    async def prune(self, batch: int = PRUNE_BATCH) -> int:
        """Delete attempts older than the retention, `batch` rows a statement; how many."""
        pruned = 0
        while True:
            status = await self._pool.execute(PRUNE, self._settings.delivery_retention_days, batch)
            deleted = int(status.split()[-1])
            pruned += deleted
            if deleted < batch:
                return pruned

    async def _prune_often(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:  # try again next time
                log.exception("pruning webhook deliveries failed")
            await asyncio.sleep(PRUNE_EVERY)

    async def _record(self, claim: Claim, outcome: Outcome) -> Claim | None:
        # Should this fail, the lease stays in self._leases: stop() gives it back.
        if not outcome.acknowledged:
            await self._record_failure(claim, outcome)
            self._leases.discard(claim.lease)
            return None
        if (claim.wanted or wants(claim.row)).standings:
            async with self._pool.acquire() as conn:
                after = await following(conn, claim, self._changes)
        else:  # no query needed
            after = await following(None, claim, self._changes)
        recorded = await self._acks.record(Acknowledged(claim, outcome, after))
        if recorded is None:  # run out and taken over: the other holder's outcome counts
            log.warning("lease on subscription %s lost before recording", claim.row["id"])
        else:
            self._count(outcome)
        if recorded is None or not recorded.renewed:
            self._leases.discard(claim.lease)
            return None
        return after.claim

    async def _record_failure(self, claim: Claim, outcome: Outcome) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            held = await still_held(conn, claim)
            if held is None:  # run out and taken over: the other holder's outcome counts
                log.warning("lease on subscription %s lost before recording", claim.row["id"])
                return
            self._count(outcome)
            if held.epoch != claim.row["epoch"]:  # changed meanwhile: start again from it
                await superseded(conn, claim, outcome)
            else:
                await record_failure(conn, claim, outcome, self._settings.webhook_retry_scale)

    def _count(self, outcome: Outcome) -> None:
        if outcome.acknowledged:
            self.delivered += 1
        else:
            self.failed += 1
