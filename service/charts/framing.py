"""What a chart is about, in words: its title, its two sides, and each side's figure
as a sentence that states the range and why ("45 to 54: Belgium's count is disputed")."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from service.charts.steps import Step, Totals
from service.charts.wording import name, span

__all__ = ["Framing", "actor", "pair", "sentence", "span", "who"]


class Framing(msgspec.Struct, frozen=True, kw_only=True):
    """The words of one chart: `claims` read `<claim> <n> ...` for each side."""

    title: str
    labels: tuple[str, str]  # the two sides, as the legend names them
    claims: tuple[str, str]  # "Russian Federation has expelled {} diplomats of Belgium"
    subject: str  # who the chart is about, for "no expulsions recorded for ..."


def who(code: str, side: str | None) -> str:
    """An actor, or a bloc's whole side (`members=true`)."""
    return f"the {code} side" if side is not None else name(code)


def pair(a: str, b: str, side: str | None) -> Framing:
    """The tit-for-tat between `a` (a bloc's side with `side`) and `b`."""
    first, second = who(a, side), name(b)
    return Framing(
        title=f"Diplomats expelled: {first} and {second}",
        labels=(f"Expelled by {first}", f"Expelled by {second}"),
        claims=(
            f"{_capital(first)} has expelled {{}} diplomats of {second}",
            f"{second} has expelled {{}} diplomats of {first}",
        ),
        subject=f"between {first} and {second}",
    )


def actor(code: str, side: str | None) -> Framing:
    """One actor's (or bloc side's) expulsions both ways."""
    subject = who(code, side)
    return Framing(
        title=f"Diplomats expelled by and from {subject}",
        labels=(f"Expelled by {subject}", f"Diplomats of {subject} expelled"),
        claims=(
            f"{_capital(subject)} has expelled {{}} foreign diplomats",
            f"{_capital(subject)} has had {{}} of its diplomats expelled",
        ),
        subject=f"involving {subject}",
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentence(claim: str, totals: Totals, steps: Sequence[Step]) -> str:
    """`Russia has expelled 54 diplomats of Belgium (45 to 54: Belgium's count is disputed)`."""
    said = claim.format(totals.total)
    reasons = _reasons(totals, [step for step in steps if step.side == totals.side])
    if (totals.low, totals.high) == (totals.total, totals.total) and not reasons:
        return f"{said}."
    allowed = span(totals.low, totals.high)
    return f"{said} ({allowed}{': ' if reasons else ''}{'; '.join(reasons)})."


def _reasons(totals: Totals, steps: Sequence[Step]) -> list[str]:
    """Why a figure is a range, incident by incident, as the reports say it."""
    # An open range is said below: "disputed" is for sources that set both ends.
    reasons = [
        f"{_possessive(step.expelled)} count is disputed"
        for step in steps
        if step.disputed and step.most is not None
    ]
    if totals.uncounted:
        reasons.append(f"{_reports(totals.uncounted)} no number")
    opened = sum(1 for step in steps if step.most is None and not step.uncounted)
    if opened:
        reasons.append(f"{_reports(opened)} only a lower bound")
    reasons += [
        f"{step.reported} by {step.expelling} together, not one alone"
        for step in steps
        if step.joint
    ]
    return reasons


def _reports(many: int) -> str:
    return "1 report gives" if many == 1 else f"{many} reports give"


def _possessive(names: str) -> str:
    return f"{names}'" if names.endswith("s") else f"{names}'s"
