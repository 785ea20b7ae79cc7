"""The Vega-Lite (v5) specification of a chart, built as data with its data inline.

Each side has a step line (its total), a band from the least to the most the
sources allow, and a mark per incident; a band with no upper bound is drawn to
the top of the chart fading out, and says so in words, never as a number.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

import msgspec

from service.charts import framing
from service.charts.framing import Framing
from service.charts.steps import Point, Steps

Spec = dict[str, Any]
SCHEMA: Final = "https://vega.github.io/schema/vega-lite/v5.json"
MEDIA_TYPE: Final = "application/vnd.vegalite.v5+json"
WIDTH, HEIGHT = 640, 300
# Colours that keep a 3:1 contrast on each background (WCAG 1.4.11).
PALETTES: Final = {"light": ("#1f5fa8", "#b4420a"), "dark": ("#7cb4f0", "#f59e5b")}
LINK_COLOURS: Final = {"light": "#555555", "dark": "#bbbbbb"}
# Text marks take no colour from a theme: the footer's and the message's are set here.
TEXT_COLOURS: Final = {"light": "#333333", "dark": "#e6e6e6"}


class Footer(msgspec.Struct, frozen=True, kw_only=True):
    """What the chart's figures stand on: the log position and when it was recorded."""

    position: int
    recorded_at: str | None  # "2022-04-19 10:02 UTC"; None for the empty log
    as_of: date | None = None
    carried: int = 0
    start: date | None = None

    def lines(self) -> str:
        """The footer's lines, "As known at position 10 (...)" first."""
        when = f", recorded {self.recorded_at}" if self.recorded_at else ""
        lines = [f"As known at log position {self.position}{when}."]
        if self.as_of is not None:
            lines.append(f"Incidents that occurred by {self.as_of.isoformat()}.")
        if self.carried and self.start is not None:
            lines.append(
                f"Totals include {self.carried} incident(s) before {self.start.isoformat()}."
            )
        lines.append("Lines: counts as reported; bands: the range the sources allow.")
        return "\n".join(lines)


def chart(drawn: Steps, words: Framing, footer: Footer, theme: str = "light") -> Spec:
    """The whole specification: title, the drawing (or a plain message), the footer."""
    subtitle = [
        framing.sentence(claim, totals, drawn.steps)
        for claim, totals in zip(words.claims, drawn.totals, strict=True)
    ]
    body = _drawing(drawn, theme) if drawn.points else _nothing(words, theme)
    return {
        "$schema": SCHEMA,
        "description": f"{words.title}. {' '.join(subtitle)}",
        "title": {"text": words.title, "subtitle": subtitle, "anchor": "start"},
        "vconcat": [body, _footer(footer, theme)],
        "config": {"view": {"stroke": None}, "font": "sans-serif"},
    }


def _nothing(words: Framing, theme: str) -> Spec:
    message = f"No expulsions {words.subject} are recorded."
    return {
        "width": WIDTH,
        "height": 40,
        "data": {"values": [{"message": message}]},
        "mark": {
            "type": "text",
            "align": "left",
            "baseline": "middle",
            "fontSize": 14,
            "color": TEXT_COLOURS[theme],
        },
        "encoding": {"text": {"field": "message"}, "x": {"value": 0}, "y": {"value": 20}},
    }


def _footer(footer: Footer, theme: str) -> Spec:
    return {
        "width": WIDTH,
        "height": 16 * (footer.lines().count("\n") + 1),
        "data": {"values": [{"text": footer.lines()}]},
        "mark": {
            "type": "text",
            "align": "left",
            "baseline": "top",
            "fontSize": 11,
            "lineBreak": "\n",
            "color": TEXT_COLOURS[theme],
        },
        "encoding": {"text": {"field": "text"}, "x": {"value": 0}, "y": {"value": 0}},
    }


def _day(text: str) -> dict[str, Any]:
    day = date.fromisoformat(text)
    return {"year": day.year, "month": day.month, "date": day.day, "utc": True}


def _drawing(drawn: Steps, theme: str) -> Spec:
    colours = PALETTES[theme]
    assert drawn.start is not None  # there are points, so a span
    assert drawn.end is not None
    x = {
        "field": "date",
        "type": "temporal",
        "scale": {"type": "utc", "domain": [_day(drawn.start), _day(drawn.end)]},
        # Fewer ticks: each label is measured as text, most of a render's time.
        "axis": {"title": None, "format": "%-d %b %Y", "labelOverlap": True, "tickCount": 6},
    }
    y = {
        "type": "quantitative",
        "scale": {"domain": [0, drawn.ceiling], "nice": False},
        "axis": {"title": "Diplomats expelled, cumulative", "tickCount": 5},
    }
    colour = {
        "field": "side",
        "type": "nominal",
        "scale": {"domain": list(drawn.sides), "range": list(colours)},
        "legend": {"title": None, "orient": "top", "labelLimit": 400},
    }
    layers = [
        layer
        for label, hue in zip(drawn.sides, colours, strict=True)
        for layer in _bands(_rows(drawn.points, label), hue, x, y)
    ]
    layers += [
        _lines(drawn, x, y, colour),
        _links(drawn, x, y, LINK_COLOURS[theme]),
        _marks(drawn, x, y, colour),
        _open_notes(drawn, x, y, colour),
    ]
    return {"width": WIDTH, "height": HEIGHT, "layer": layers}


def _rows(points: list[Point], label: str) -> list[dict[str, Any]]:
    """A side's points, with where its bounded and its open band reach."""
    return [
        {
            **msgspec.to_builtins(point),
            "bounded": point.low if point.high is None else point.high,
            "open_top": point.top if point.open else point.low,
        }
        for point in points
        if point.side == label
    ]


def _bands(rows: list[dict[str, Any]], hue: str, x: Spec, y: Spec) -> list[Spec]:
    """The band a side's sources allow: solid where bounded, fading where open."""
    area = {"type": "area", "interpolate": "step-after", "aria": False}
    fading = {
        "gradient": "linear",
        "x1": 0,
        "y1": 1,
        "x2": 0,
        "y2": 0,
        "stops": [{"offset": 0, "color": hue}, {"offset": 1, "color": "transparent"}],
    }
    bounded = {
        "data": {"values": rows},
        "mark": {**area, "color": hue, "opacity": 0.2},
        "encoding": {"x": x, "y": {**y, "field": "low"}, "y2": {"field": "bounded"}},
    }
    opened = {
        "data": {"values": rows},
        "mark": {**area, "color": fading, "opacity": 0.25},
        "encoding": {"x": x, "y": {**y, "field": "low"}, "y2": {"field": "open_top"}},
    }
    return [bounded, opened]


def _lines(drawn: Steps, x: Spec, y: Spec, colour: Spec) -> Spec:
    return {
        "data": {"values": msgspec.to_builtins(drawn.points)},
        "mark": {"type": "line", "interpolate": "step-after", "strokeWidth": 2, "aria": False},
        "encoding": {"x": x, "y": {**y, "field": "total"}, "color": colour},
    }


def _marks(drawn: Steps, x: Spec, y: Spec, colour: Spec) -> Spec:
    """A mark per incident; its tooltip (and the SVG's title) states it as reported."""
    rows = [
        {
            **msgspec.to_builtins(step),
            "range": "open" if step.total_high is None else f"{step.total_low}-{step.total_high}",
            "label": f"{step.date}: {step.expelling} expelled {step.reported} diplomats of "
            f"{step.expelled}. Sources: {step.sources}.",
        }
        for step in drawn.steps
    ]
    tooltip = [
        {"field": "date", "type": "temporal", "title": "Date", "format": "%-d %b %Y"},
        {"field": "expelling", "title": "Expelling"},
        {"field": "expelled", "title": "Expelled"},
        {"field": "reported", "title": "Count as reported"},
        {"field": "sources", "title": "Sources"},
        {"field": "total", "title": "Total so far"},
    ]
    return {
        "data": {"values": rows},
        "mark": {"type": "point", "filled": True, "size": 70, "opacity": 1},
        "encoding": {
            "x": x,
            "y": {**y, "field": "total"},
            "color": colour,
            "shape": {"field": "side", "type": "nominal", "legend": None},
            "tooltip": tooltip,
            "description": {"field": "label"},
        },
    }


def _links(drawn: Steps, x: Spec, y: Spec, hue: str) -> Spec:
    """A dashed rule from each incident to the one responding to it."""
    return {
        "data": {"values": msgspec.to_builtins(drawn.links)},
        "mark": {"type": "rule", "strokeDash": [4, 3], "color": hue, "strokeWidth": 1.5},
        "encoding": {
            "x": {**x, "field": "from_date"},
            "y": {**y, "field": "from_total"},
            "x2": {"field": "to_date"},
            "y2": {"field": "to_total"},
            "tooltip": {"field": "text"},
            "description": {"field": "text"},
        },
    }


def _open_notes(drawn: Steps, x: Spec, y: Spec, colour: Spec) -> Spec:
    """Words where a band has no upper bound: the top of the chart is not a figure."""
    notes = [
        {
            "side": totals.side,
            "date": drawn.end,
            "low": totals.low,
            "note": f"no upper bound: {framing.span(totals.low, None)}",
        }
        for totals in drawn.totals
        if totals.high is None
    ]
    return {
        "data": {"values": notes},
        "mark": {"type": "text", "align": "right", "dy": -8, "fontSize": 11, "aria": False},
        "encoding": {
            "x": x,
            "y": {**y, "field": "low"},
            "text": {"field": "note"},
            "color": {**colour, "legend": None},
        },
    }
