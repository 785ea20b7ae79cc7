"""Every route of the app, Litestar's own schema pages included, as requests to make."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from litestar import Litestar
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

INCIDENT, SUBSCRIPTION = uuid.uuid4(), uuid.uuid4()
PATH_VALUES = {
    "{incident_id}": str(INCIDENT),
    "{subscription_id}": str(SUBSCRIPTION),
    "{code}": "RU",
    "{counterpart}": "NL",
    "{path}": "swagger",
    "{event_type}": "expulsion.reported",
}
ENDLESS = frozenset({"/v1/events/stream", "/v1/standings/stream"})  # streams never end


class Operation(NamedTuple):
    """A method on a concrete path, and the handler Litestar routes it to."""

    method: str
    path: str
    handler: BaseRouteHandler


def operations(app: Litestar) -> list[Operation]:
    """Every method of every route but OPTIONS, whose answer is the path's, whatever is asked."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path_format
        for placeholder, value in PATH_VALUES.items():
            path = path.replace(placeholder, value)
        assert "{" not in path, f"no test value for a parameter of {route.path_format}"
        for method, (handler, _) in sorted(route.route_handler_map.items()):
            if method != "OPTIONS":
                found.append(Operation(method, path, handler))
    return found
