"""API keys: made once and shown once, stored only as a keyed hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from service.log.store import Connection

SCOPES: Final = ("read", "write", "subscribe", "admin")
PREFIX: Final = "lg_"
# The keys are 256 random bits, so the hash needs no slowness; keying it (with
# Settings.key_secret) means a copy of the table cannot be checked against keys
# without the server's secret.


class Key(msgspec.Struct, frozen=True):
    """A key's name and scopes, as a request is authorised with."""

    name: str
    scopes: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        """Whether this key may act with `scope` (admin may do everything)."""
        return scope in self.scopes or "admin" in self.scopes


class InvalidKeyRequest(ValueError):
    """A key cannot be made as asked (bad name, unknown scope, name taken)."""


def key_hash(key: str, secret: str) -> bytes:
    """The keyed hash stored for a key, keyed with the server's secret (Settings.key_secret)."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()


def parse_scopes(text: str) -> tuple[str, ...]:
    """Scopes from 'read,write'; InvalidKeyRequest for unknown ones."""
    scopes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise InvalidKeyRequest(f"scopes must be some of {', '.join(SCOPES)}, not {text!r}")
    return scopes


async def create_key(conn: Connection, name: str, scopes: tuple[str, ...], secret: str) -> str:
    """Make a key and store its hash under `secret`; the key is returned once, never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO api_keys (name, key_hash, scopes) VALUES ($1, $2, $3)",
            name,
            key_hash(key, secret),
            list(scopes),
        )
    except Exception as exc:
        raise InvalidKeyRequest(f"cannot create key {name!r}: {exc}") from None
    return key


async def revoke_key(conn: Connection, name: str) -> bool:
    """Revoke a key by name; whether there was such an unrevoked key."""
    revoked = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
        " RETURNING name",
        name,
    )
    return revoked is not None


async def lookup(conn: Connection, key: str, secret: str) -> Key | None:
    """The unrevoked key with this value, if any (compared by hash, in constant time)."""
    digest = key_hash(key, secret)
    row = await conn.fetchrow(
        "SELECT name, scopes, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
        return None
    return Key(row["name"], tuple(row["scopes"]))


async def lookup_name(conn: Connection, name: str) -> Key | None:
    """The unrevoked key with this name, if any (a stream token names its key)."""
    row = await conn.fetchrow(
        "SELECT name, scopes FROM api_keys WHERE name = $1 AND revoked_at IS NULL", name
    )
    return None if row is None else Key(row["name"], tuple(row["scopes"]))
