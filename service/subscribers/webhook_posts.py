"""One webhook attempt: the signed POST to the subscriber's pinned address, and its outcome."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final
from uuid import UUID

import asyncpg
import httpx
import msgspec

from service.subscribers.cloud_events import signatures
from service.subscribers.sealing import unseal
from service.subscribers.ssrf import UnsafeUrl, pinned

if TYPE_CHECKING:
    from service.config import Settings

TIMEOUT: Final = 10.0
MAX_RESPONSE_BYTES: Final = 4096
# Past this many clients, those unused for a while are closed (none is in use then:
# an attempt lasts at most TIMEOUT).
CLIENTS_KEPT: Final = 256
CLIENT_IDLE_S: Final = 3 * TIMEOUT


class Clients:
    """A keep-alive HTTP client for each subscription in delivery.

    A pool shared by all would look over every one of its connections at each request
    (httpcore checks each for expiry, a system call apiece); a subscription's own
    pool holds the connection its deliveries, one at a time, go over. No redirects,
    no proxies from the environment: only the pinned address. One TLS context serves
    them all.
    """

    def __init__(self) -> None:
        self._tls = httpx.create_ssl_context(trust_env=False)
        self._clients: dict[UUID, tuple[httpx.AsyncClient, float]] = {}  # and when last taken

    async def of(self, subscription: UUID) -> httpx.AsyncClient:
        """The client of `subscription`, made on first use."""
        now = time.monotonic()
        known = self._clients.pop(subscription, None)  # put back last: oldest first
        client = known[0] if known else self._new()
        self._clients[subscription] = (client, now)
        if known is None and len(self._clients) > CLIENTS_KEPT:
            await self._close_idle(now - CLIENT_IDLE_S)
        return client

    def _new(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=TIMEOUT, follow_redirects=False, trust_env=False, verify=self._tls
        )

    async def _close_idle(self, before: float) -> None:
        for subscription, (client, used) in list(self._clients.items()):
            if used >= before:
                return
            del self._clients[subscription]
            await client.aclose()

    async def close(self) -> None:
        """Close every client and its connections."""
        clients, self._clients = self._clients, {}
        for client, _ in clients.values():
            await client.aclose()


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt came to."""

    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def acknowledged(self) -> bool:
        """Only a 2xx acknowledges."""
        return self.status_code is not None and 200 <= self.status_code < 300


def signing_secrets(settings: Settings, row: asyncpg.Record) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the one it replaced
    while that is still honoured (the row's `previous_secret` is null once it is not)."""
    stored = [row["secret"], row["previous_secret"]]
    return [unseal(settings.key_secret, row["id"], sealed) for sealed in stored if sealed]


async def post(
    client: httpx.AsyncClient, settings: Settings, row: asyncpg.Record, message_id: str, body: bytes
) -> Outcome:
    """POST `body` to the subscription `row`, within one deadline for the whole attempt."""
    now = int(time.time())
    headers = {
        "content-type": "application/cloudevents+json",
        "webhook-id": message_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signatures(signing_secrets(settings, row), message_id, now, body),
    }
    started = time.monotonic()
    try:
        # One deadline for the whole attempt: a receiver trickling bytes must
        # not hold the subscription (and a pooled connection) for long.
        async with asyncio.timeout(TIMEOUT):
            target = await pinned(row["url"], settings.webhook_allow_private)
            headers["host"] = target.host
            extensions = {"sni_hostname": target.server_name} if target.server_name else {}
            async with client.stream(
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


async def _read_some(response: httpx.Response) -> None:
    # The body is not needed; a receiver must not make us read an endless one.
    read = 0
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
