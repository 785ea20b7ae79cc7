"""OPTIONS answers that list every method of a path.

Litestar 2 makes one OPTIONS handler per path when the path's first handler is
registered, and it never learns about handlers registered later (litestar#4169,
fixed only in v3): `OPTIONS /v1/incidents` would answer `Allow: GET, OPTIONS`.
Declaring them ourselves, before the routes, keeps `Allow` true.
"""

from collections import defaultdict
from collections.abc import Iterable

from litestar import Response, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler

from service.http.route_meta import route_meta


def allow_handlers(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """One OPTIONS handler per path of `handlers`, listing all its methods."""
    methods: dict[str, set[str]] = defaultdict(lambda: {"OPTIONS"})
    for handler in handlers:
        for path in handler.paths:
            methods[path] |= handler.http_methods
    return [_options(path, ", ".join(sorted(allowed))) for path, allowed in methods.items()]


def _options(path: str, allow: str) -> HTTPRouteHandler:
    async def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow})

    return route(
        path,
        http_method=[HttpMethod.OPTIONS],
        include_in_schema=False,
        opt=route_meta(scope="public"),
        name=f"options:{path}",
    )(options)
