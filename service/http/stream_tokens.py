"""Stream tokens: for browsers, whose EventSource cannot send Authorization.

`POST /v1/stream-tokens` (a key with `read`) answers a token that opens event
streams (`?token=`) for 5 minutes, and does nothing else: only the stream routes
read `?token=`, and sent as a bearer key it matches no key.

A token is signed, not stored: `lst_` + base64url of [key name, expiry] + `.` +
base64url of its HMAC-SHA256, under a key derived from LEGATION_KEY_SECRET for
this purpose alone (so it is no API key's hash and no webhook secret's key). Any
replica checks it without a database write or a table to prune; it cannot be
revoked on its own, which the 5 minutes bound, but it is worth only what its key
is: the key is looked up by name when a stream opens, so revoking the key (or
taking its `read` scope away) stops its tokens too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from typing import Final

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX: Final = "lst_"
LIFETIME_SECONDS: Final = 300
_INFO: Final = b"legation stream tokens v1"


class Claims(msgspec.Struct, frozen=True, array_like=True):
    """What a token says: whose key made it, and until when (Unix seconds) it opens streams."""

    key: str
    expires: int


_claims = msgspec.json.Decoder(Claims)


@functools.lru_cache(maxsize=4)
def _signing_key(key_secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return hkdf.derive(key_secret.encode())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key_secret: str, payload: str) -> bytes:
    return hmac.new(_signing_key(key_secret), payload.encode(), hashlib.sha256).digest()


def issue(key_secret: str, key_name: str, now: float | None = None) -> tuple[str, int]:
    """A token for the key `key_name`, and when it expires (Unix seconds)."""
    expires = int(now if now is not None else time.time()) + LIFETIME_SECONDS
    payload = _b64(msgspec.json.encode(Claims(key_name, expires)))
    return f"{PREFIX}{payload}.{_b64(_mac(key_secret, payload))}", expires


def key_of(key_secret: str, token: str, now: float | None = None) -> str | None:
    """The name of the key a valid, unexpired token was made with; None for anything else."""
    payload, _, mac = token.removeprefix(PREFIX).partition(".")
    if not token.startswith(PREFIX) or not mac:
        return None
    try:
        given, claims = _unb64(mac), _claims.decode(_unb64(payload))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    if not hmac.compare_digest(given, _mac(key_secret, payload)):
        return None
    if claims.expires <= (now if now is not None else time.time()):
        return None
    return claims.key
