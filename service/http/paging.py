"""How every list pages (API.md, "Lists"): `limit`, an opaque `cursor`, `next_cursor`, `Link`.

A cursor is the last item's sort key (ties broken by a unique key), JSON-encoded
and base64url'd without padding: opaque to clients, decoded into a struct here.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request
from litestar.params import QueryParameter

from service.http.problems import FieldError, InvalidInput

T = TypeVar("T")
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1..500)")]
CursorParam = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=400, description="`next_cursor` of the previous page"),
]
DEFAULT_LIMIT = 50


def encode_cursor(key: msgspec.Struct) -> str:
    """The opaque cursor for a page that ended at `key`."""
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(value: str | None, decoder: msgspec.json.Decoder[T]) -> T | None:
    """The key a cursor holds (None without one); 422 naming `cursor` for anything else."""
    if value is None:
        return None
    try:
        return decoder.decode(base64.urlsafe_b64decode(value.encode() + b"=="))
    except (ValueError, msgspec.DecodeError):
        error = FieldError("cursor", "is not a cursor this API returned")
        raise InvalidInput("cursor: is not a cursor this API returned", errors=[error]) from None


def next_link(request: Request[Any, Any, Any], cursor: str) -> dict[str, str]:
    """The RFC 8288 `Link: <...>; rel="next"` header: this request's URL with `cursor`."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    query.append(("cursor", cursor))
    return {"Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"'}
