"""Webhook delivery: CloudEvents 1.0 signed per Standard Webhooks, in log order, with retries.

Each subscription is claimed with FOR UPDATE SKIP LOCKED while one event is
delivered, so server processes share the work and never deliver to one
subscription at the same time. Its position moves only forward, and only past
an acknowledged (2xx) event or events that match none of its filters.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import httpx
import msgspec

from service.fanout import LiveEvent, matches, read_live
from service.feed import cancel
from service.sealing import unseal
from service.ssrf import UnsafeUrl, pinned
from service.store import LogFilter, head_position

if TYPE_CHECKING:
    from service.config import Settings
    from service.feed import Doorbell
    from service.store import Connection

log = logging.getLogger("legation.webhooks")
TIMEOUT: Final = 10.0
MAX_RESPONSE_BYTES: Final = 4096
SCAN_PAGE: Final = 500
# About 5 s, 30 s, 2 min, 15 min, 1 h, then hourly, for 3 days in all.
BACKOFF: Final = (5.0, 30.0, 120.0, 900.0, 3600.0)
GIVE_UP_AFTER: Final = timedelta(days=3)
# Each worker holds one subscription (and one pooled connection) per delivery.
WORKERS: Final = 4
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


# One round trip, outside any transaction: most doorbell rings find nothing due,
# and where no subscription is active at all the next rings need not ask for a while.
ANY_DUE = """
SELECT EXISTS (SELECT 1 FROM subscriptions WHERE active),
       EXISTS (SELECT 1 FROM subscriptions
                WHERE active AND next_attempt_at <= now()
                  AND position < (SELECT coalesce(max(position), 0) FROM events))
"""
# How long "no subscription is active" is believed: one made on another process is
# noticed here within this (that process delivers it meanwhile).
NONE_ACTIVE_SECONDS: Final = 1.0
DUE = """
SELECT id, url, secret, types, countries, position, attempt, failing_since
  FROM subscriptions
 WHERE active AND next_attempt_at <= now() AND position < $1
 ORDER BY next_attempt_at
 LIMIT 1
 FOR UPDATE SKIP LOCKED
"""


class Deliverer:
    """Delivers due webhooks while the app runs."""

    def __init__(self, pool: asyncpg.Pool[Any], doorbell: Doorbell, settings: Settings) -> None:
        self._pool, self._doorbell, self._settings = pool, doorbell, settings
        # No redirects, no proxies from the environment: only the pinned address.
        self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = asyncio.Event()
        self._none_active_until = 0.0  # time.monotonic(); see NONE_ACTIVE_SECONDS
        self.delivered = 0
        self.failed = 0

    def start(self, workers: int = WORKERS) -> None:
        """Start delivering in the background: several subscriptions at once."""
        self._tasks = [
            asyncio.create_task(self._run(scout=n == 0), name=f"legation-webhooks-{n}")
            for n in range(workers)
        ]

    async def stop(self) -> None:
        """Stop; a delivery in flight is not acknowledged and will be sent again."""
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        await self._client.aclose()

    async def _run(self, scout: bool) -> None:
        # Only the scout answers the doorbell; the others join in while it finds work,
        # so an append costs one look at the subscriptions, not one per worker.
        while True:
            try:
                if await self.deliver_one():
                    self._busy.set()
                    continue
            except Exception:  # keep delivering; the subscription's row is unchanged
                log.exception("webhook delivery failed")
            if scout:
                await self._doorbell.wait(min(1.0, BACKOFF[0] * self._settings.webhook_retry_scale))
            else:
                self._busy.clear()
                await self._busy.wait()

    def subscriptions_changed(self) -> None:
        """A subscription was made or resumed by this process: look at them again now."""
        self._none_active_until = 0.0
        self._doorbell.ring()

    async def deliver_one(self) -> bool:
        """Deliver the next event of one due subscription; False when none is due."""
        if time.monotonic() < self._none_active_until:
            return False
        active, due = await self._pool.fetchrow(ANY_DUE) or (False, False)
        if not active:
            self._none_active_until = time.monotonic() + NONE_ACTIVE_SECONDS
        if not due:
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            head = await head_position(conn)
            row = await conn.fetchrow(DUE, head)
            if row is None:
                return False
            live = await self._next_event(conn, row, head)
            if live is None:
                return True
            outcome = await self._post(row, live)
            await self._record(conn, row, live, outcome)
            return True

    async def _next_event(
        self, conn: Connection, row: asyncpg.Record, head: int
    ) -> LiveEvent | None:
        filters = LogFilter(tuple(row["types"]), tuple(row["countries"]))
        scanned = row["position"]
        while scanned < head:
            page = await read_live(conn, scanned, SCAN_PAGE)
            if not page:
                break
            for live in page:
                if matches(live, filters):
                    await self._advance(conn, row["id"], scanned)
                    return live
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

    async def _record(
        self, conn: Connection, row: asyncpg.Record, live: LiveEvent, outcome: Outcome
    ) -> None:
        attempt = row["attempt"] + 1
        if outcome.acknowledged:
            self.delivered += 1
            await conn.execute(
                "UPDATE subscriptions SET position = greatest(position, $2), attempt = 0,"
                " failing_since = NULL, next_attempt_at = now() WHERE id = $1",
                row["id"],
                live.event.position,
            )
            retry_at = None
        else:
            self.failed += 1
            retry_at = await self._failed(conn, row, attempt, outcome)
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
        self, conn: Connection, row: asyncpg.Record, attempt: int, outcome: Outcome
    ) -> Any:
        gone = outcome.status_code == 410
        expired = await conn.fetchval(
            "SELECT coalesce($1, now()) < now() - $2::interval", row["failing_since"], GIVE_UP_AFTER
        )
        if gone or expired:
            reason = "the receiver answered 410 Gone" if gone else "retries ran out after 3 days"
            await conn.execute(
                "UPDATE subscriptions SET active = false, deactivated_reason = $2, attempt = $3"
                " WHERE id = $1",
                row["id"],
                reason,
                attempt,
            )
            return None
        delay = retry_delay(attempt, self._settings.webhook_retry_scale)
        retry_at: Any = await conn.fetchval(
            "UPDATE subscriptions SET attempt = $2, failing_since = coalesce(failing_since, now()),"
            " next_attempt_at = clock_timestamp() + make_interval(secs => $3)"
            " WHERE id = $1 RETURNING next_attempt_at",
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
