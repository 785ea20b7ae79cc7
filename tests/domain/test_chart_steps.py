"""The steps, bands and words of a chart, from expulsions as known at a position (pure)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from service.charts import framing, spec, steps
from service.charts.history import ExpulsionAt
from service.incidents.catalogue import Source


def expelled(n: int, on: str, by: str, of: str, **given: Any) -> ExpulsionAt:
    """An expulsion with the figures the standings' SQL would give it."""
    count, low, high = given.get("count"), given.get("low"), given.get("high")
    joint_by: tuple[str, ...] = given.get("joint_by", ())
    return ExpulsionAt(
        id=uuid.UUID(int=n),
        occurred_on=date.fromisoformat(on),
        reported_position=n,
        initiator=by,
        recipient=of,
        joint_initiators=joint_by,
        joint_recipients=(),
        named_initiators=(by, *joint_by),
        named_recipients=(of,),
        number=count if count is not None else (low or 0),
        least=low if low is not None else (count or 0),
        most=count if low is None else high,
        uncounted=count is None and low is None,
        disputed=low is not None and low != high,
        count=count,
        count_low=low,
        count_high=high,
        responds_to=tuple(uuid.UUID(int=r) for r in given.get("responds_to", ())),
        summary=None,
        sources=(Source(outlet="AFP"),),
    )


def test_a_joint_party_is_attributed_nothing_alone_and_up_to_the_whole_count() -> None:
    found = [expelled(1, "2022-04-04", "DE", "RU", count=75, joint_by=("FR",))]
    words = framing.actor("DE", None)
    drawn = steps.build(found, words.labels, steps.actor_sides("DE"))
    [step] = drawn.steps
    assert (step.number, step.least, step.most, step.joint) == (0, 0, 75, True)
    sent = drawn.totals[0]
    assert (sent.total, sent.low, sent.high) == (0, 0, 75)
    assert framing.sentence(words.claims[0], sent, drawn.steps) == (
        "Germany has expelled 0 foreign diplomats "
        "(0 to 75: 75 by Germany and France together, not one alone)."
    )


def test_an_open_range_leaves_the_band_open_from_that_step_on() -> None:
    found = [
        expelled(1, "2022-03-01", "RU", "US", count=10),
        expelled(2, "2022-03-10", "RU", "US", low=201, high=None),
        expelled(3, "2022-03-20", "RU", "US", count=5),
    ]
    words = framing.pair("RU", "US", None)
    drawn = steps.build(found, words.labels, steps.pair_sides("RU", "US"))
    assert [(s.total, s.total_low, s.total_high) for s in drawn.steps] == [
        (10, 10, 10),
        (211, 211, None),
        (216, 216, None),
    ]
    points = [p for p in drawn.points if p.side == words.labels[0]]
    assert [p.open for p in points] == [False, False, True, True, True]
    assert all(p.top == drawn.ceiling for p in points if p.open)
    assert drawn.ceiling > 216
    assert framing.sentence(words.claims[0], drawn.totals[0], drawn.steps) == (
        "Russian Federation has expelled 216 diplomats of United States "
        "(at least 216: 1 report gives only a lower bound)."
    )


def test_a_bounded_figure_with_no_doubt_is_just_its_number() -> None:
    found = [expelled(1, "2022-04-05", "EU", "RU", count=19)]
    words = framing.pair("EU", "RU", None)
    drawn = steps.build(found, words.labels, steps.pair_sides("EU", "RU"))
    assert framing.sentence(words.claims[0], drawn.totals[0], drawn.steps) == (
        "European Union has expelled 19 diplomats of Russian Federation."
    )
    assert framing.sentence(words.claims[1], drawn.totals[1], drawn.steps) == (
        "Russian Federation has expelled 0 diplomats of European Union."
    )


def test_a_link_joins_only_incidents_drawn() -> None:
    found = [
        expelled(1, "2022-04-05", "EU", "RU", count=19),
        expelled(2, "2022-04-15", "RU", "EU", count=18, responds_to=(1, 99)),
    ]
    words = framing.pair("EU", "RU", None)
    drawn = steps.build(found, words.labels, steps.pair_sides("EU", "RU"))
    [link] = drawn.links
    assert (link.from_date, link.from_total, link.to_date, link.to_total) == (
        "2022-04-05",
        19,
        "2022-04-15",
        18,
    )
    later = steps.build(found, words.labels, steps.pair_sides("EU", "RU"), date(2022, 4, 10))
    assert later.links == []  # the 19 is before the window: carried, not drawn
    assert later.carried == 1


def test_the_footer_states_the_position_and_when_it_was_recorded() -> None:
    footer = spec.Footer(position=12, recorded_at="2026-12-04 10:00:00 UTC")
    assert footer.lines().splitlines()[0] == (
        "As known at log position 12, recorded 2026-12-04 10:00:00 UTC."
    )


def test_the_ceiling_is_a_round_number_above_every_bounded_figure() -> None:
    found = [expelled(1, "2022-04-05", "EU", "RU", count=94)]
    drawn = steps.build(found, ("a", "b"), steps.pair_sides("EU", "RU"))
    assert drawn.ceiling == 200
