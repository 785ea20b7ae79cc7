"""Charts of the standings over time: SVG rendered here, or the Vega-Lite specification."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Final

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.charts import drawing
from service.charts.drawing import Subject
from service.charts.spec import MEDIA_TYPE as VEGA_LITE
from service.http.actor_params import actor_param
from service.http.problems import FieldError, InvalidInput, NotAcceptable
from service.http.reading import READ, Reading
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.standings import Members, side_of
from service.projections.standings import At

SVG: Final = "image/svg+xml"
ANSWERS: Final = (SVG, VEGA_LITE)
# remember: the edge keeps live answers by URL and Accept (see service/http/edge.py).
CHART = route_meta(
    problems=(406, 422, 503),
    scope="read",
    remember=True,
    answers=ANSWERS,
    headers=("ETag", "Legation-Position", "Link", "Memento-Datetime"),
)
From = Annotated[
    date | None,
    QueryParameter(
        name="from",
        description="Draw from this date (earlier incidents are carried into the first level)",
    ),
]
Until = Annotated[
    date | None, QueryParameter(name="until", description="Draw up to this date (inclusive)")
]


def window(start: date | None, end: date | None) -> None:
    """A 422 naming `from` when it comes after `until`."""
    if start is not None and end is not None and start > end:
        message = f"{start.isoformat()} is after until ({end.isoformat()})"
        raise InvalidInput(f"from: {message}", errors=[FieldError("from", message)])


def counterpart_of(code: str, counterpart: str) -> str:
    """The counterpart's code; a 422 when it is `code` itself."""
    other = actor_param(counterpart, "counterpart")
    if other == code:
        message = "must differ from code: an actor has no relation with itself"
        raise InvalidInput(f"counterpart: {message}", errors=[FieldError("counterpart", message)])
    return other


def media_type(reading: Reading) -> str:
    """SVG unless the client asks for the specification; 406 when it takes neither."""
    header = reading.request.headers.get("accept", "").strip()
    chosen = reading.request.accept.best_match(list(ANSWERS)) if header else SVG
    if chosen is None:
        raise NotAcceptable(f"charts are answered as {' or '.join(ANSWERS)}; Accept has neither")
    return chosen


async def _render(pool: Pool, subject: Subject, media: str, at: At) -> bytes:
    async with pool.acquire() as conn:
        chart = await drawing.drawn(conn, at, subject)
    return await drawing.body(chart, media)  # rendered without holding a connection


async def answer(reading: Reading, subject: Subject, side: str | None) -> Response[bytes]:
    """The chart of `subject`, kept by position like every standing."""
    media = media_type(reading)
    render = partial(_render, reading.read_models.pool, subject, media)
    return await reading.rendered(("chart", subject), render, media, side, {"Vary": "Accept"})


@get(
    "/v1/relations/{code:str}/{counterpart:str}/chart",
    operation_id="getRelationChart",
    tags=["charts"],
    summary="The tit-for-tat between two actors, drawn",
    media_type=SVG,
    opt=CHART,
    dependencies=READ,
)
async def relation_chart(
    code: FromPath[str],
    counterpart: FromPath[str],
    members: Members = False,
    start: From = None,
    end: Until = None,
    *,
    reading: NamedDependency[Reading],
) -> Response[bytes]:
    """Diplomats expelled each way, cumulative, as steps with the range the sources allow.

    A mark per incident (its date, count as reported and sources in its title), a
    dashed link from an incident to the one responding to it, and a footer with the
    log position the chart is known at. `Accept: application/vnd.vegalite.v5+json`
    answers the Vega-Lite specification with its data inline."""
    a = actor_param(code, "code")
    b = counterpart_of(a, counterpart)
    window(start, end)
    return await answer(reading, Subject(a, b, start, end), side_of(a, members))


@get(
    "/v1/countries/{code:str}/chart",
    operation_id="getCountryChart",
    tags=["charts"],
    summary="An actor's expulsions both ways, drawn",
    media_type=SVG,
    opt=CHART,
    dependencies=READ,
)
async def country_chart(
    code: FromPath[str],
    members: Members = False,
    start: From = None,
    end: Until = None,
    *,
    reading: NamedDependency[Reading],
) -> Response[bytes]:
    """Diplomats the actor expelled and had expelled, cumulative, with their ranges.

    As the relation chart: a mark per incident, responds-to links, the footer; the
    Vega-Lite specification for `Accept: application/vnd.vegalite.v5+json`."""
    actor = actor_param(code, "code")
    window(start, end)
    return await answer(reading, Subject(actor, None, start, end), side_of(actor, members))


ROUTES = [relation_chart, country_chart]
