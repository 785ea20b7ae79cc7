"""The query parameters each route takes; any other name is a 422, like an unknown body field.

The names are read from the routes Litestar built (the handler's own query
parameters and those of its dependencies, as it will parse them), so a new
route or parameter is covered without a list to keep. The check runs after the
edge: an answer it replays from memory was a 200 for the same URL, so its names
were checked when it was first answered.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from litestar import Litestar
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import Scope

from service.http.problems import FieldError, InvalidInput


class QueryNames:
    """The names each route handler of an app takes (learnt once the app is built)."""

    def __init__(self) -> None:
        self._taken: dict[BaseRouteHandler, frozenset[str]] = {}

    def learn(self, app: Litestar) -> None:
        """Read every handler's query parameters from the routes `app` built."""
        for route in app.routes:
            if isinstance(route, HTTPRoute):
                for handler, kwargs in route.route_handler_map.values():
                    names = frozenset(p.field_alias for p in kwargs.expected_query_params)
                    self._taken[handler] = names

    def taken_by(self, handler: BaseRouteHandler) -> frozenset[str]:
        """The query parameter names `handler` takes."""
        return self._taken[handler]

    def check(self, scope: Scope) -> None:
        """A 422 naming each query parameter the request's route does not take."""
        query: bytes = scope["query_string"]
        if not query:
            return
        taken = self._taken[scope["route_handler"]]
        unknown = unknown_names(query, taken)
        if unknown:
            raise not_taken(unknown, taken)


def unknown_names(query: bytes, taken: frozenset[str]) -> list[str]:
    """The names in `query` not in `taken`, in the order given, each once.

    Blank values are kept: Litestar ignores `?q=` and `?q`, which would hide a typo.
    """
    names = dict.fromkeys(name for name, _ in parse_qsl(query.decode(errors="replace"), True))
    return [name for name in names if name not in taken]


def not_taken(unknown: list[str], taken: frozenset[str]) -> InvalidInput:
    """The 422 naming each unknown parameter, and what the route takes instead."""
    message = "is not a query parameter of this route"
    errors = [FieldError(name, message) for name in unknown]
    takes = ", ".join(sorted(taken)) if taken else "none"
    detail = "; ".join(f"{name}: {message}" for name in unknown)
    return InvalidInput(f"{detail} (it takes {takes})", errors=errors)
