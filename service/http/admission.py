"""What a request must pass before its route runs: its key, its query's names.

The app's before-request hook, not Litestar guards: a guard is handed a copy of
the route handler on every call (~13 us a request, measured), which the fastest
routes feel. Answers the edge replays from memory never get here.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from service.http.auth import Authorizer
from service.http.query_names import QueryNames


class Admission:
    """The checks every route's requests pass, in order: 401/403, 422."""

    def __init__(self, authorizer: Authorizer, names: QueryNames) -> None:
        self.authorizer, self.names = authorizer, names

    async def before_request(self, request: Request[Any, Any, Any]) -> None:
        """Refuse the request, or let its route run."""
        scope = request.scope
        handler = scope["route_handler"]
        await self.authorizer.authorize(request, handler)
        if scope["method"] == "OPTIONS":
            return  # it describes the path, whatever the query says
        self.names.check(scope)
