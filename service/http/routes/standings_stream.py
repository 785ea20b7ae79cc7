"""GET /v1/standings/stream: each standing an event changed, as Server-Sent Events.

Litestar parses, validates and authorizes the request; the body is what
service/subscribers/standings_stream.py sends, in the response of routes/stream.py.
"""

from __future__ import annotations

import functools
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import Stream

from service.config import Settings
from service.http.consistency import ReadModels
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.events import _split, log_filter
from service.http.routes.stream import EVENT_STREAM, STREAM_HEADERS, EventStream, StreamTokenParam
from service.http.stream_limits import StreamSlots
from service.projections.standing_changes import StandingChanges
from service.subscribers.standings_stream import Projected, Resume, follow_standings, resume_from


@get(
    "/v1/standings/stream",
    tags=["standings"],
    summary="Follow the standings as Server-Sent Events",
    media_type=EVENT_STREAM,
    operation_id="streamStandings",
    opt=route_meta(
        problems=(401, 403, 422, 429, 503),
        scope="read",
        headers=("Cache-Control", "X-Accel-Buffering"),
        stream_token=True,
    ),
)
async def stream_standings(
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
    streams: NamedDependency[StreamSlots],
    read_models: NamedDependency[ReadModels],
    standing_changes: NamedDependency[StandingChanges],
    country: Annotated[
        list[str] | None,
        QueryParameter(max_items=20, description="Only these actors' standings"),
    ] = None,
    after: Annotated[
        int | None,
        Parameter(
            ge=0,
            le=2**62,
            description="Start after this position (default: where the standings are now)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID", max_length=24, description="Resume after this id (12/RU)"
        ),
    ] = None,
    token: StreamTokenParam = None,
) -> Stream:
    """A `legation.standing.changed` message per actor whose standing an event changed, once
    the standings include the event: `id:` `<position>/<code>`, `data:` the actor's
    standing before and after it, each as GET /v1/countries/{code}?known_at=N answers.

    A `retry:` line comes first; a comment every 15 s while nothing changes. Caps, stalls
    and `token` as on /v1/events/stream.
    """
    countries = log_filter([], _split(country)).countries
    start = resume_from(last_event_id)
    if start is None:
        start = Resume(after if after is not None else read_models.position)
    projected = Projected(lambda: read_models.position, read_models.advanced)
    body = functools.partial(
        follow_standings, pool, standing_changes, projected, settings, start, countries
    )
    return EventStream(body, streams, headers=STREAM_HEADERS)


ROUTES = [stream_standings]
