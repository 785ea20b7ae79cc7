"""GET /: the page for people, and the search that leads from a name to an actor's page."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect

from service.http.reading import READ, Reading
from service.http.route_meta import route_meta
from service.log.store import head_position
from service.pages import front
from service.pages.document import MEDIA_TYPE
from service.projections import standings as query
from service.projections.standings_views import standing

HEADERS: Final = {"Content-Security-Policy": front.POLICY, "X-Content-Type-Options": "nosniff"}
# The pairs of actors with an expulsion between them (either way), as known at $1.
PAIRS: Final = """
SELECT DISTINCT least(initiator, recipient) AS a, greatest(initiator, recipient) AS b
  FROM incident_versions
 WHERE kind = 'expulsion' AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)
 ORDER BY a, b
"""
Sort = Literal["name", "expelled", "own", "balance", "incidents"]


@get(
    "/",
    operation_id="getFrontPage",
    media_type=MEDIA_TYPE,
    include_in_schema=False,
    opt=route_meta(scope="read"),
    dependencies=READ,
)
async def front_page(
    q: Annotated[str, QueryParameter(max_length=100)] = "",
    sort: Annotated[Sort, QueryParameter(description="Column to sort by")] = "expelled",
    *,
    reading: NamedDependency[Reading],
) -> Response[str] | Redirect:
    """The standings table, search, links and embed code; one match of a search leads
    straight to its actor's page."""
    found = front.find(q)
    if len(found) == 1:
        return Redirect(f"/embed/countries/{found[0]}", status_code=303)
    at = await reading.at()
    async with reading.read_models.pool.acquire() as conn:
        rows = await query.standings(conn, at)
        pairs = [(row["a"], row["b"]) for row in await conn.fetch(PAIRS, at.position)]
        head = await head_position(conn)
    standings = [standing(row, row["code"], at.position) for row in rows]
    log = front.Log(head=head, projected=at.position)
    html = front.front(standings, pairs, log, sort, q, found)
    return Response(html, media_type=MEDIA_TYPE, headers=HEADERS)


@get(
    "/favicon.ico",
    operation_id="getFavicon",
    include_in_schema=False,
    opt=route_meta(scope="public"),
    status_code=204,
    cache_control=CacheControlHeader(max_age=86400),
)
async def favicon() -> None:
    """No icon: a browser that opens a chart asks for one; 204 says there is none."""


ROUTES = [front_page, favicon]
