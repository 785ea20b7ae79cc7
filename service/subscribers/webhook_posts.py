"""One webhook attempt: the signed POST to the subscriber's pinned address, and its outcome."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Final
from uuid import UUID

import asyncpg
import msgspec

from service.subscribers.cloud_events import signatures
from service.subscribers.sealing import unseal
from service.subscribers.ssrf import UnsafeUrl, pinned
from service.subscribers.webhook_connections import BadAnswer, Connections

if TYPE_CHECKING:
    from service.config import Settings

TIMEOUT: Final = 10.0
USER_AGENT: Final = "legation-webhooks"


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt came to."""

    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def acknowledged(self) -> bool:
        """Only a 2xx acknowledges."""
        return self.status_code is not None and 200 <= self.status_code < 300


def signing_secrets(settings: Settings, row: asyncpg.Record) -> tuple[str, ...]:
    """The secrets a delivery is signed with: the current one, and the one it replaced
    while that is still honoured (the row's `previous_secret` is null once it is not)."""
    stored = (row["secret"], row["previous_secret"])
    return _unsealed(settings.key_secret, row["id"], stored)


@functools.lru_cache(maxsize=1024)
def _unsealed(
    key_secret: str, subscription: UUID, stored: tuple[str | None, ...]
) -> tuple[str, ...]:
    # Opened once a subscription, not at every delivery: a new secret is a new stored value.
    return tuple(unseal(key_secret, subscription, sealed) for sealed in stored if sealed)


async def post(
    connections: Connections,
    settings: Settings,
    row: asyncpg.Record,
    message_id: str,
    body: bytes,
) -> Outcome:
    """POST `body` to the subscription `row`, within one deadline for the whole attempt."""
    now = int(time.time())
    signed = signatures(signing_secrets(settings, row), message_id, now, body)
    started = time.monotonic()
    try:
        # One deadline for the whole attempt: a receiver trickling bytes must
        # not hold the subscription (and its connection) for long.
        async with asyncio.timeout(TIMEOUT):
            target = await pinned(row["url"], settings.webhook_allow_private)
            head = (
                f"POST {target.target} HTTP/1.1\r\nhost: {target.host}\r\n"
                "content-type: application/cloudevents+json\r\n"
                f"content-length: {len(body)}\r\nwebhook-id: {message_id}\r\n"
                f"webhook-timestamp: {now}\r\nwebhook-signature: {signed}\r\n"
                f"user-agent: {USER_AGENT}\r\n\r\n"
            )
            code = await connections.post(row["id"], target, head.encode("ascii"), body)
        status: int | None = code
        error = None if 200 <= code < 300 else f"answered {code}"
    except UnsafeUrl as exc:
        status, error = None, exc.detail
    except TimeoutError:
        status, error = None, f"no answer within {TIMEOUT:g} s"
    except asyncio.IncompleteReadError:
        status, error = None, "the connection closed before a whole answer"
    except (OSError, BadAnswer, ValueError) as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:500]
    return Outcome(status, int((time.monotonic() - started) * 1000), error)
