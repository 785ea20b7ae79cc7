"""What a request must pass before its route runs: its key, its query's names, its Accept.

The app's before-request hook, not Litestar guards: a guard is handed a copy of
the route handler on every call (~13 us a request, measured), which the fastest
routes feel. Answers the edge replays from memory never get here.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Scope

from service.http.auth import Authorizer
from service.http.query_names import QueryNames
from service.http.read_only import SAFE_METHODS, refusal
from service.http.representations import SCOPE_KEY, choose, not_acceptable
from service.http.route_meta import meta_of


class Admission:
    """The checks every route's requests pass, in order: 503 for a write on a standby,
    401/403, 422, 406."""

    def __init__(self, authorizer: Authorizer, names: QueryNames) -> None:
        self.authorizer, self.names = authorizer, names

    async def before_request(self, request: Request[Any, Any, Any]) -> None:
        """Refuse the request, or note the representation its route is to answer in."""
        scope = request.scope
        handler = scope["route_handler"]
        if self.authorizer.read_only and request.method not in SAFE_METHODS:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise refusal(request.method, target, self.authorizer.primary_url)
        await self.authorizer.authorize(request, handler)
        if scope["method"] == "OPTIONS":
            return  # it describes the path, whatever the query or Accept say
        self.names.check(scope)
        meta = meta_of(handler)
        offers_csv = meta is not None and meta.csv
        representation = choose(accept_of(scope), offers_csv)
        if representation is None:
            raise not_acceptable(scope["path"])
        if offers_csv:
            scope[SCOPE_KEY] = representation  # type: ignore[typeddict-unknown-key]


def accept_of(scope: Scope) -> bytes | None:
    """The request's Accept header, as sent (the first, should there be several)."""
    for name, value in scope["headers"]:
        if name == b"accept":
            return value
    return None
