"""POST /v1/stream-tokens: a short-lived token that opens event streams (for EventSource)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency

from service.config import Settings
from service.http import stream_tokens
from service.http.auth import request_key
from service.http.route_meta import route_meta


class StreamToken(msgspec.Struct, frozen=True):
    """Opens `GET /v1/events/stream` and `GET /v1/standings/stream` with `?token=` until
    `expires_at`, for the key that asked for it; it is good for nothing else."""

    token: str
    expires_at: datetime


@post(
    "/v1/stream-tokens",
    status_code=201,
    tags=["log"],
    summary="A token for browsers to open event streams with",
    operation_id="createStreamToken",
    opt=route_meta(problems=(401, 403), scope="read", keyed=True),
)
async def create_stream_token(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> StreamToken:
    """For EventSource, which cannot send Authorization: pass the token as `?token=` to open
    a stream within 5 minutes (a stream open by then stays open). It needs a key with
    `read` even where reads are public, and stops working when that key is revoked."""
    token, expires = stream_tokens.issue(settings.key_secret, request_key(request).name)
    return StreamToken(token, datetime.fromtimestamp(expires, UTC))


ROUTES = [create_stream_token]
