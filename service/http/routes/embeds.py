"""Pages to embed in an article: a chart with its figures in words, live or as known then."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Final, Literal

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.charts import drawing, render
from service.charts.drawing import Subject
from service.http.actor_params import actor_param
from service.http.reading import READ, Reading
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.charts import From, Until, counterpart_of, window
from service.http.routes.standings import Members, side_of
from service.pages import embed
from service.pages.document import MEDIA_TYPE
from service.projections.standings import At

# remember: a page is a function of its URL and the log position, like a standing.
PAGE = route_meta(problems=(422, 503), scope="read", remember=True)
HEADERS: Final = {"Content-Security-Policy": embed.POLICY, "X-Content-Type-Options": "nosniff"}
Theme = Annotated[Literal["light", "dark"], QueryParameter(description="Colours")]


async def _page(pool: Pool, subject: Subject, theme: str, reading: Reading, at: At) -> bytes:
    async with pool.acquire() as conn:
        chart = await drawing.drawn(conn, at, subject)
    svg = await render.svg(drawing.specification(chart, theme), theme)
    query = list(reading.request.query_params.multi_items())
    permanent = embed.permanent_url(reading.request.url.path, query, at.position)
    live = reading.known_at is None
    return embed.embed(chart, svg, theme, live, permanent).encode()


async def answer(
    reading: Reading, subject: Subject, side: str | None, theme: str
) -> Response[bytes]:
    """The page of `subject`, kept by position like every standing."""
    make = partial(_page, reading.read_models.pool, subject, theme, reading)
    key = ("embed", subject, theme, reading.known_at is None)
    return await reading.rendered(key, make, MEDIA_TYPE, side, HEADERS)


@get(
    "/embed/relations/{code:str}/{counterpart:str}",
    operation_id="getRelationEmbed",
    media_type=MEDIA_TYPE,
    include_in_schema=False,
    opt=PAGE,
    dependencies=READ,
)
async def relation_embed(
    code: FromPath[str],
    counterpart: FromPath[str],
    members: Members = False,
    start: From = None,
    end: Until = None,
    theme: Theme = "light",
    *,
    reading: NamedDependency[Reading],
) -> Response[bytes]:
    """The relation chart's page, for an iframe."""
    a = actor_param(code, "code")
    b = counterpart_of(a, counterpart)
    window(start, end)
    return await answer(reading, Subject(a, b, start, end), side_of(a, members), theme)


@get(
    "/embed/countries/{code:str}",
    operation_id="getCountryEmbed",
    media_type=MEDIA_TYPE,
    include_in_schema=False,
    opt=PAGE,
    dependencies=READ,
)
async def country_embed(
    code: FromPath[str],
    members: Members = False,
    start: From = None,
    end: Until = None,
    theme: Theme = "light",
    *,
    reading: NamedDependency[Reading],
) -> Response[bytes]:
    """An actor's chart page, for an iframe."""
    actor = actor_param(code, "code")
    window(start, end)
    return await answer(reading, Subject(actor, None, start, end), side_of(actor, members), theme)


ROUTES = [relation_embed, country_embed]
