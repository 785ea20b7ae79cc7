"""Webhook signing secrets at rest: AES-GCM under a key derived from Settings.key_secret.

A sealed secret is `aesgcm1:` + base64(12-byte nonce + ciphertext and tag), with
the subscription's id as associated data: a sealed value copied onto another
row does not open there. Rows made before sealing existed hold the secret in
clear (`whsec_...`); a migration cannot seal them (it does not know the key
secret), so `seal_clear_secrets` does at every start-up, and `unseal` passes a
clear one through meanwhile.
"""

from __future__ import annotations

import base64
import functools
import os
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    import asyncpg

PREFIX: Final = "aesgcm1:"
NONCE_BYTES: Final = 12
# HKDF's info names the purpose, so this key differs from any other one derived
# from the same secret (the API keys' HMAC uses the secret itself).
_INFO: Final = b"legation webhook secrets v1"


class SecretUnreadable(RuntimeError):
    """A sealed secret does not open with this key secret (LEGATION_KEY_SECRET changed?)."""


@functools.lru_cache(maxsize=4)
def _cipher(key_secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return AESGCM(hkdf.derive(key_secret.encode()))


def seal(key_secret: str, subscription_id: UUID, secret: str) -> str:
    """The stored form of a subscription's signing secret."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(key_secret).encrypt(nonce, secret.encode(), subscription_id.bytes)
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(key_secret: str, subscription_id: UUID, stored: str) -> str:
    """The signing secret from its stored form (a not yet sealed one is returned as it is)."""
    if not stored.startswith(PREFIX):
        return stored
    raw = base64.b64decode(stored.removeprefix(PREFIX))
    try:
        opened = _cipher(key_secret).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], subscription_id.bytes
        )
    except InvalidTag:
        raise SecretUnreadable(
            f"the secret of subscription {subscription_id} was sealed under another"
            " LEGATION_KEY_SECRET"
        ) from None
    return opened.decode()


async def seal_clear_secrets(pool: asyncpg.Pool[Any], key_secret: str) -> int:
    """Seal every secret still stored in clear; how many. Called at start-up.

    Each update holds only if the row still has the clear value, so processes
    starting together on one database do not seal a secret twice.
    """
    rows = await pool.fetch(
        "SELECT id, secret FROM subscriptions WHERE left(secret, $1) <> $2", len(PREFIX), PREFIX
    )
    await pool.executemany(
        "UPDATE subscriptions SET secret = $3 WHERE id = $1 AND secret = $2",
        [(row["id"], row["secret"], seal(key_secret, row["id"], row["secret"])) for row in rows],
    )
    return len(rows)
