"""The steps a chart draws: cumulative diplomats expelled by each side, incident by
incident, with the range the sources allow (pure: no I/O).

A side's total is what the standings attribute to it alone; its band spans the
least and the most the sources allow, open at the top (`high` None) as soon as one
incident gives no number or an open range. Incidents before `start` are carried
into the first level, so the last level always equals the standing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final

import msgspec

from service.charts import wording
from service.charts.history import ExpulsionAt

# Which of the two sides an expulsion counts for (0 or 1), and whether the figure
# is shared with other parties (then attributable to none alone, up to all of it).
Sides = Callable[[ExpulsionAt], tuple[int, bool]]
Level = tuple[int, int, int | None]  # a side's total, low and high (None: unbounded)
MIN_CEILING: Final = 10


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One incident, the side it counts for and the side's totals after it."""

    incident: str
    date: str
    side: str
    expelling: str  # the names of the actors on each side of the incident
    expelled: str
    reported: str
    number: int
    least: int
    most: int | None
    total: int
    total_low: int
    total_high: int | None
    disputed: bool
    uncounted: bool
    joint: bool
    corrected: bool
    sources: str
    summary: str | None
    responds_to: list[str]


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """Where a side's line and band stand from `date` on; `top` is where the band is
    drawn to: `high`, or the chart's ceiling when the sources set no bound (`open`)."""

    side: str
    date: str
    total: int
    low: int
    high: int | None
    top: int
    open: bool


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """An incident drawn responding to an earlier one (`responds_to`)."""

    from_date: str
    from_total: int
    to_date: str
    to_total: int
    side: str
    text: str


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """A side's figure at the end: its number, range and counters (as the standings)."""

    side: str
    total: int
    low: int
    high: int | None
    incidents: int
    uncounted: int
    disputed: int
    joint: int
    corrected: int


class Steps(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a chart of two sides draws."""

    sides: tuple[str, str]
    steps: list[Step]
    points: list[Point]
    links: list[Link]
    totals: list[Totals]
    start: str | None  # the x axis' span; None when there is nothing to draw
    end: str | None
    ceiling: int
    carried: int  # incidents before `start`, counted in the first level


def pair_sides(a: str, b: str) -> Sides:
    """Side 0: `a` expelled `b`'s diplomats; 1: the other way. A joint incident on
    either side is shared, as in the relation's figures."""

    def sides(found: ExpulsionAt) -> tuple[int, bool]:
        shared = bool(found.joint_initiators or found.joint_recipients)
        return (0 if a in found.initiators else 1), shared

    return sides


def actor_sides(code: str) -> Sides:
    """Side 0: `code` expelled; 1: `code`'s diplomats were expelled. Shared where its
    own side is joint, as in the standing's figures."""

    def sides(found: ExpulsionAt) -> tuple[int, bool]:
        if code in found.initiators:
            return 0, bool(found.joint_initiators)
        return 1, bool(found.joint_recipients)

    return sides


class _Running:
    """A side's running totals."""

    def __init__(self) -> None:
        self.total, self.low, self.high = 0, 0, 0
        self.high_open = False
        self.incidents = self.uncounted = self.disputed = self.joint = self.corrected = 0

    def add(self, found: ExpulsionAt, shared: bool) -> tuple[int, int, int | None]:
        number, least = (0, 0) if shared else (found.number, found.least)
        self.total += number
        self.low += least
        if found.most is None:
            self.high_open = True
        else:
            self.high += found.most
        self.incidents += 1
        self.uncounted += found.uncounted
        self.disputed += found.disputed
        self.joint += shared
        self.corrected += bool(found.corrections)
        return number, least, found.most

    @property
    def upper(self) -> int | None:
        return None if self.high_open else self.high


def build(
    found: Sequence[ExpulsionAt],
    labels: tuple[str, str],
    sides: Sides,
    start: date | None = None,
    end: date | None = None,
) -> Steps:
    """The steps of `found` (oldest first) for the two sides named `labels`."""
    running = (_Running(), _Running())
    steps: list[Step] = []
    levels: list[Level] = [(0, 0, 0), (0, 0, 0)]  # each side's level before `start`
    for each in found:
        index, shared = sides(each)
        figures = running[index].add(each, shared)
        side = running[index]
        if start is not None and each.occurred_on < start:
            levels[index] = (side.total, side.low, side.upper)
        else:
            steps.append(_step(each, labels[index], side, figures, shared))
    window = _window(found, start, end)
    ceiling = _ceiling(running, steps)
    carried = dict(zip(labels, levels, strict=True))
    return Steps(
        sides=labels,
        steps=steps,
        points=[] if window is None else _points(steps, carried, *window, ceiling),
        links=_links(steps),
        totals=[_totals(label, side) for label, side in zip(labels, running, strict=True)],
        start=None if window is None else window[0].isoformat(),
        end=None if window is None else window[1].isoformat(),
        ceiling=ceiling,
        carried=len(found) - len(steps),
    )


def _step(
    found: ExpulsionAt,
    label: str,
    side: _Running,
    figures: tuple[int, int, int | None],
    shared: bool,
) -> Step:
    number, least, most = figures
    return Step(
        incident=str(found.id),
        date=found.occurred_on.isoformat(),
        side=label,
        expelling=wording.names(found.named_initiators),
        expelled=wording.names(found.named_recipients),
        reported=wording.reported(found.count, found.count_low, found.count_high),
        number=number,
        least=least,
        most=most,
        total=side.total,
        total_low=side.low,
        total_high=side.upper,
        disputed=found.disputed,
        uncounted=found.uncounted,
        joint=shared,
        corrected=bool(found.corrections),
        sources=wording.sources(found.sources),
        summary=found.summary,
        responds_to=[str(earlier) for earlier in found.responds_to],
    )


def _window(
    found: Sequence[ExpulsionAt], start: date | None, end: date | None
) -> tuple[date, date] | None:
    """The dates the x axis spans: the window asked for, else the incidents' own,
    a few days wider so that the first and last steps are not on the edge; None
    when there is nothing to span."""
    dates = [each.occurred_on for each in found if start is None or each.occurred_on >= start]
    first = start or (min(dates) - timedelta(days=2) if dates else end)
    last = end or (max(dates) + timedelta(days=2) if dates else start)
    if first is None or last is None:
        return None
    return first, max(first, last)


def _ceiling(running: tuple[_Running, _Running], steps: Sequence[Step]) -> int:
    """The top of the y axis: above every bounded figure, a round number."""
    highest = max(
        [MIN_CEILING]
        + [side.high for side in running]
        + [step.total_high or step.total for step in steps]
    )
    wanted = highest * 1.2
    magnitude = 10 ** math.floor(math.log10(wanted))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= wanted:
            return int(factor * magnitude)
    return int(10 * magnitude)


def _points(
    steps: Sequence[Step], carried: dict[str, Level], first: date, last: date, ceiling: int
) -> list[Point]:
    """Each side's line: its carried level at the first date, a point per step, and
    its last level held to the last date."""
    points: list[Point] = []
    for label, level in carried.items():
        points.append(_point(label, first.isoformat(), *level, ceiling))
        for step in steps:
            if step.side == label:
                level = (step.total, step.total_low, step.total_high)
                points.append(_point(label, step.date, *level, ceiling))
        points.append(_point(label, last.isoformat(), *level, ceiling))
    return points


def _point(label: str, day: str, total: int, low: int, high: int | None, ceiling: int) -> Point:
    return Point(
        side=label,
        date=day,
        total=total,
        low=low,
        high=high,
        top=ceiling if high is None else high,
        open=high is None,
    )


def _links(steps: Sequence[Step]) -> list[Link]:
    """A link from each responded-to incident drawn to the step that responds to it."""
    drawn = {step.incident: step for step in steps}
    return [
        Link(
            from_date=earlier.date,
            from_total=earlier.total,
            to_date=step.date,
            to_total=step.total,
            side=step.side,
            text=f"{step.expelling}'s expulsion of {step.date} responds to "
            f"{earlier.expelling}'s of {earlier.date}",
        )
        for step in steps
        for ref in step.responds_to
        if (earlier := drawn.get(ref)) is not None
    ]


def _totals(label: str, side: _Running) -> Totals:
    return Totals(
        side=label,
        total=side.total,
        low=side.low,
        high=side.upper,
        incidents=side.incidents,
        uncounted=side.uncounted,
        disputed=side.disputed,
        joint=side.joint,
        corrected=side.corrected,
    )
