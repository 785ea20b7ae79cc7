"""What a route declares beside its path, read by auth, the edge and the OpenAPI document.

One typed value in each handler's `opt`, so a misspelt key is a type error, not a
route that silently needs no key or is never remembered.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
from litestar.handlers.base import BaseRouteHandler

Scope = Literal["public", "read", "write", "subscribe", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("public", "read", "write", "subscribe", "admin")
# Headers a route's own answers carry (service/http/openapi/headers.py describes each).
Header = Literal[
    "ETag",
    "Location",
    "Legation-Position",
    "Link",
    "Memento-Datetime",
    "Cache-Control",
    "X-Accel-Buffering",
]
_KEY: Final = "legation"


class RouteMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Who may call a route, what body it takes, and what else it may answer."""

    scope: Scope  # the key scope it needs (auth); `read` is public unless reads need a key
    problems: tuple[int, ...] = ()  # the problem statuses of its own logic (OpenAPI)
    body: Any = None  # the msgspec Struct (or union of them) it decodes itself (OpenAPI)
    ndjson_body: bool = False  # a body of IncidentReport lines (OpenAPI)
    remember: bool = False  # live answers are a function of URL and position (the edge)
    answers: tuple[str, ...] = ()  # the media types its 200 answers, chosen by Accept (OpenAPI)
    headers: tuple[Header, ...] = ()  # what its 2xx and 304 answers carry (OpenAPI)
    stream_token: bool = False  # a stream: `?token=` (service/http/stream_tokens.py) may open it
    keyed: bool = False  # needs a key with the scope even where reads are public
    csv: bool = False  # answers its list as CSV too, for Accept: text/csv (csv_tables)


def route_meta(
    scope: Scope,
    problems: tuple[int, ...] = (),
    body: Any = None,
    ndjson_body: bool = False,
    remember: bool = False,
    answers: tuple[str, ...] = (),
    headers: tuple[Header, ...] = (),
    stream_token: bool = False,
    keyed: bool = False,
    csv: bool = False,
) -> dict[str, RouteMeta]:
    """The `opt` of a route handler."""
    if scope not in SCOPES:  # a Struct is not validated when made: a typo would pass
        raise ValueError(f"no key scope {scope!r}; one of {', '.join(SCOPES)}")
    meta = RouteMeta(
        scope=scope,
        problems=problems,
        body=body,
        ndjson_body=ndjson_body,
        remember=remember,
        answers=answers,
        headers=headers,
        stream_token=stream_token,
        keyed=keyed,
        csv=csv,
    )
    return {_KEY: meta}


def meta_of(handler: BaseRouteHandler) -> RouteMeta | None:
    """What the handler declared (None for Litestar's own, e.g. the schema pages)."""
    meta: RouteMeta | None = handler.opt.get(_KEY)
    return meta
