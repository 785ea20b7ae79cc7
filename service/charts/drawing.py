"""A chart from the read models: what it is about, its steps as known at a position,
its specification and its SVG."""

from __future__ import annotations

from datetime import UTC, date
from typing import TYPE_CHECKING

import msgspec

from service.charts import framing, history, render, spec, steps
from service.charts.framing import Framing
from service.charts.spec import Footer, Spec
from service.charts.steps import Steps
from service.log.store import recorded_by
from service.projections.standings import At

if TYPE_CHECKING:
    from service.log.store import Connection

_encoder = msgspec.json.Encoder()


class Subject(msgspec.Struct, frozen=True):
    """What a chart draws: `code` alone, or with `counterpart`; between `start` and `end`."""

    code: str
    counterpart: str | None = None
    start: date | None = None
    end: date | None = None


class Drawn(msgspec.Struct, frozen=True):
    """A chart's steps, its words and its footer: what every rendering of it states."""

    steps: Steps
    words: Framing
    footer: Footer
    incidents: list[history.ExpulsionAt]  # as found, sources and corrections included


async def drawn(conn: Connection, at: At, subject: Subject) -> Drawn:
    """The chart of `subject` as known at `at` (occurred by `at.as_of` and `subject.end`)."""
    end = min(filter(None, (at.as_of, subject.end)), default=None)
    found = await history.expulsions(
        conn, At(at.position, end, at.side), subject.code, subject.counterpart
    )
    if subject.counterpart is None:
        words, sides = framing.actor(subject.code, at.side), steps.actor_sides(subject.code)
    else:
        words = framing.pair(subject.code, subject.counterpart, at.side)
        sides = steps.pair_sides(subject.code, subject.counterpart)
    made = steps.build(found, words.labels, sides, subject.start, end)
    recorded = await recorded_by(conn, at.position) if at.position else None
    footer = Footer(
        position=at.position,
        recorded_at=None
        if recorded is None
        else f"{recorded.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        as_of=at.as_of,
        carried=made.carried,
        start=subject.start,
    )
    return Drawn(made, words, footer, found)


def specification(chart: Drawn, theme: str = "light") -> Spec:
    """The Vega-Lite specification of a drawn chart."""
    return spec.chart(chart.steps, chart.words, chart.footer, theme)


async def body(chart: Drawn, media_type: str, theme: str = "light") -> bytes:
    """The chart as `media_type`: SVG, or its Vega-Lite specification."""
    made = specification(chart, theme)
    if media_type == spec.MEDIA_TYPE:
        return _encoder.encode(made)
    return (await render.svg(made, theme)).encode()
