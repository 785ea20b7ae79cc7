"""Webhook delivery: CloudEvents 1.0 signed per Standard Webhooks, in log order, with retries.

A subscription's next event is claimed with a lease: a short transaction (FOR
UPDATE SKIP LOCKED, so processes share the work) marks it leased until a while
from now. The POST is made with no transaction open, and its outcome recorded
in a second short transaction only while the lease is still ours. So one
subscription is never delivered to twice at once and gets its events in log
order, at least once: a crashed worker's lease runs out and another takes
over. Once an event is acknowledged, the lease goes on to the next matching
event of the log page already read, with no new claim. Its position moves
only forward, and only past an acknowledged (2xx) event or events that match
none of its filters. Attempts older than the retention are pruned in the
background.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID, uuid4

import asyncpg
import httpx
import msgspec

from service.log.doorbell import cancel
from service.log.store import LogFilter, head_position
from service.subscribers.fanout import LiveEvent, matches, read_live
from service.subscribers.sealing import unseal
from service.subscribers.ssrf import UnsafeUrl, pinned

if TYPE_CHECKING:
    from service.config import Settings
    from service.log.doorbell import Doorbell
    from service.log.store import Connection

log = logging.getLogger("legation.webhooks")
TIMEOUT: Final = 10.0
MAX_RESPONSE_BYTES: Final = 4096
SCAN_PAGE: Final = 500
# About 5 s, 30 s, 2 min, 15 min, 1 h, then hourly, for 3 days in all.
BACKOFF: Final = (5.0, 30.0, 120.0, 900.0, 3600.0)
GIVE_UP_AFTER: Final = timedelta(days=3)
# Deliveries in flight at once per process; each holds a subscription, no connection.
WORKERS: Final = 16
_encoder = msgspec.json.Encoder()


def new_secret() -> str:
    """A signing secret in Standard Webhooks' form: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value: v1, + base64 HMAC-SHA256 of id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class CloudEvent(msgspec.Struct, frozen=True):
    """The structured-mode CloudEvents 1.0 body of a delivery."""

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: str
    sequence: str
    datacontenttype: str
    data: msgspec.Raw


def cloud_event(live: LiveEvent) -> bytes:
    """One log event as a CloudEvent (sequence is the position, as CloudEvents' string)."""
    event = live.event
    incident = event.stream.removeprefix("incident-")
    return _encoder.encode(
        CloudEvent(
            specversion="1.0",
            id=str(event.id),
            source=f"/v1/incidents/{incident}",
            type=event.type,
            subject=incident,
            time=event.recorded_at.isoformat().replace("+00:00", "Z"),
            sequence=str(event.position),
            datacontenttype="application/json",
            data=event.data,
        )
    )


def retry_delay(attempt: int, scale: float) -> float:
    """Seconds before retry number `attempt` (1-based)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1] * scale


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt came to."""

    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def acknowledged(self) -> bool:
        """Only a 2xx acknowledges."""
        return self.status_code is not None and 200 <= self.status_code < 300


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


# One round trip, outside any transaction: most doorbell rings find nothing due,
# and where no subscription is active at all the next rings need not ask for a while.
ANY_DUE = """
SELECT EXISTS (SELECT 1 FROM subscriptions WHERE active),
       EXISTS (SELECT 1 FROM subscriptions
                WHERE active AND next_attempt_at <= now()
                  AND (leased_until IS NULL OR leased_until < now())
                  AND position < (SELECT coalesce(max(position), 0) FROM events))
"""
# How long "no subscription is active" is believed: one made on another process is
# noticed here within this (that process delivers it meanwhile).
NONE_ACTIVE_SECONDS: Final = 1.0
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

    def __init__(self, pool: asyncpg.Pool[Any], doorbell: Doorbell, settings: Settings) -> None:
        self._pool, self._doorbell, self._settings = pool, doorbell, settings
        # No redirects, no proxies from the environment: only the pinned address.
        # Connections are kept alive between deliveries to the same address.
        self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        self._tasks: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(WORKERS)
        self._wake = asyncio.Event()
        self._leases: set[UUID] = set()  # held by this process; given back at stop
        self._none_active_until = 0.0  # time.monotonic(); see NONE_ACTIVE_SECONDS
        self.delivered = 0
        self.failed = 0

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
        await self._client.aclose()
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
        return await self._record(claim, await self._post(claim.row, claim.live))

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
            head = await head_position(conn)
            # Subscriptions with nothing for them up to the head are moved past it.
            while (row := await conn.fetchrow(DUE, head)) is not None:
                found = await self._next_event(conn, row, head)
                if found is not None:
                    lease = uuid4()
                    await conn.execute(
                        "UPDATE subscriptions SET lease = $2, leased_until = now() + $3"
                        " WHERE id = $1",
                        row["id"],
                        lease,
                        LEASE,
                    )
                    self._leases.add(lease)
                    live, ahead = found
                    return Claim(row, live, lease, row["attempt"], row["failing_since"], ahead)
        return None

    async def _next_event(
        self, conn: Connection, row: asyncpg.Record, head: int
    ) -> tuple[LiveEvent, tuple[LiveEvent, ...]] | None:
        filters = LogFilter(tuple(row["types"]), tuple(row["countries"]))
        scanned = row["position"]
        while scanned < head:
            page = await read_live(conn, scanned, SCAN_PAGE)
            if not page:
                break
            for index, live in enumerate(page):
                if matches(live, filters):
                    await self._advance(conn, row["id"], scanned)
                    return live, tuple(page[index + 1 :])
                scanned = live.event.position
        # Nothing for this subscriber up to the head: skip past it.
        await self._advance(conn, row["id"], scanned)
        return None

    async def _advance(self, conn: Connection, subscription: Any, position: int) -> None:
        await conn.execute(
            "UPDATE subscriptions SET position = $2 WHERE id = $1 AND position < $2",
            subscription,
            position,
        )

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

    async def _post(self, row: asyncpg.Record, live: LiveEvent) -> Outcome:
        body = cloud_event(live)
        message_id, now = str(live.event.id), int(time.time())
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": message_id,
            "webhook-timestamp": str(now),
            "webhook-signature": signature(
                unseal(self._settings.key_secret, row["id"], row["secret"]), message_id, now, body
            ),
        }
        started = time.monotonic()
        try:
            # One deadline for the whole attempt: a receiver trickling bytes must
            # not hold the subscription (and a pooled connection) for long.
            async with asyncio.timeout(TIMEOUT):
                target = await pinned(row["url"], self._settings.webhook_allow_private)
                headers["host"] = target.host
                extensions = {"sni_hostname": target.server_name} if target.server_name else {}
                async with self._client.stream(
                    "POST", target.url, content=body, headers=headers, extensions=extensions
                ) as response:
                    await _read_some(response)
            code = response.status_code
            status: int | None = code
            error = None if 200 <= code < 300 else f"answered {code}"
        except UnsafeUrl as exc:
            status, error = None, exc.detail
        except TimeoutError:
            status, error = None, f"no answer within {TIMEOUT:g} s"
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        return Outcome(status, int((time.monotonic() - started) * 1000), error)

    async def _record(self, claim: Claim, outcome: Outcome) -> Claim | None:
        # Should this fail, the lease stays in self._leases: stop() gives it back.
        async with self._pool.acquire() as conn, conn.transaction():
            active = await conn.fetchval(
                "SELECT active FROM subscriptions WHERE id = $1 AND lease = $2 FOR UPDATE",
                claim.row["id"],
                claim.lease,
            )
            if active is None:  # run out and taken over: the other holder's outcome counts
                log.warning("lease on subscription %s lost before recording", claim.row["id"])
                renewed = None
            else:
                await self._recorded(conn, claim, outcome)
                go_on = active and outcome.acknowledged
                renewed = await self._renewed(conn, claim) if go_on else None
        if renewed is None:
            self._leases.discard(claim.lease)
        return renewed

    async def _renewed(self, conn: Connection, claim: Claim) -> Claim | None:
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
        await self._advance(conn, subscription, passed)
        return None

    async def _recorded(self, conn: Connection, claim: Claim, outcome: Outcome) -> None:
        row, live = claim.row, claim.live
        attempt = claim.attempt + 1
        if outcome.acknowledged:
            self.delivered += 1
            await conn.execute(
                "UPDATE subscriptions SET position = greatest(position, $2), attempt = 0,"
                " failing_since = NULL, next_attempt_at = now(), lease = NULL,"
                " leased_until = NULL WHERE id = $1",
                row["id"],
                live.event.position,
            )
            retry_at = None
        else:
            self.failed += 1
            retry_at = await self._failed(conn, claim, attempt, outcome)
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

    async def _failed(self, conn: Connection, claim: Claim, attempt: int, outcome: Outcome) -> Any:
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
        delay = retry_delay(attempt, self._settings.webhook_retry_scale)
        retry_at: Any = await conn.fetchval(
            "UPDATE subscriptions SET attempt = $2, failing_since = coalesce(failing_since, now()),"
            " next_attempt_at = clock_timestamp() + make_interval(secs => $3), lease = NULL,"
            " leased_until = NULL WHERE id = $1 RETURNING next_attempt_at",
            row["id"],
            attempt,
            delay,
        )
        return retry_at


async def _read_some(response: httpx.Response) -> None:
    # The body is not needed; a receiver must not make us read an endless one.
    read = 0
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
