"""Response headers in the OpenAPI document, each described once under components.headers.

A route lists in its route_meta the headers its own answers carry; the headers
of every answer (X-Request-ID) and of a status (Retry-After, WWW-Authenticate)
are added here. `required` means the server always sends it: schemathesis holds
the running server to that.
"""

from typing import Final

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

from service.http.route_meta import Header

REF = "#/components/headers/{name}"
_INTEGER = Schema(type=OpenAPIType.INTEGER, minimum=0)
_TEXT = Schema(type=OpenAPIType.STRING)

HEADERS: Final[dict[str, OpenAPIHeader]] = {
    "ETag": OpenAPIHeader(
        description='The entity tag of this answer (an incident\'s is its version, "3"): '
        "send it back as If-Match to correct, or as If-None-Match for a 304.",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern=r'^"[^"]*"$'),
    ),
    "Location": OpenAPIHeader(
        description="The path of what was created.",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI_REFERENCE),
    ),
    "Legation-Position": OpenAPIHeader(
        description="The last log position this answer includes: pass it as min_position to "
        "read your own write.",
        required=True,
        schema=_INTEGER,
    ),
    "Link": OpenAPIHeader(
        description='RFC 8288 links: `rel="next"` while a next page exists; on a live standing, '
        '`rel="memento"`, the same answer as known at its position, which never changes.',
        schema=_TEXT,
    ),
    "Memento-Datetime": OpenAPIHeader(
        description="RFC 7089: when the position an answer for `known_at` (or Accept-Datetime) "
        "stands at was recorded, as an HTTP-date.",
        schema=_TEXT,
    ),
    "Cache-Control": OpenAPIHeader(
        description="`no-cache`: an event stream is never stored.", required=True, schema=_TEXT
    ),
    "X-Accel-Buffering": OpenAPIHeader(
        description="`no`: asks a reverse proxy not to buffer the stream.",
        required=True,
        schema=_TEXT,
    ),
    "Retry-After": OpenAPIHeader(
        description="Seconds to wait before trying again.", required=True, schema=_INTEGER
    ),
    "WWW-Authenticate": OpenAPIHeader(
        description="The Bearer challenge, with the scope a key lacks (403).",
        required=True,
        schema=_TEXT,
    ),
    "X-Request-ID": OpenAPIHeader(
        description="The request's id: the one the request sent (up to 128 safe characters) "
        "or a new one; also each appended event's metadata.correlation_id.",
        required=True,
        schema=_TEXT,
    ),
}
BY_STATUS: Final[dict[int, tuple[str, ...]]] = {
    401: ("WWW-Authenticate",),
    403: ("WWW-Authenticate",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}
# A 304 carries what the 200 would, less what only a creation sends.
_NOT_ON_304: Final = frozenset({"Location"})


def describe(responses: dict[str, OpenAPIResponse | Reference], own: tuple[Header, ...]) -> None:
    """Name in each response the headers it carries: its route's own on 2xx and 304."""
    for status, response in responses.items():
        if not isinstance(response, OpenAPIResponse):
            continue
        code = int(status)
        names: tuple[str, ...] = BY_STATUS.get(code, ())
        if code < 300:
            names = own
        elif code == 304:
            names = tuple(name for name in own if name not in _NOT_ON_304)
        response.headers = {
            name: Reference(ref=REF.format(name=name)) for name in (*names, "X-Request-ID")
        }
