"""How a count, a range and a source read in words, the same on charts and pages."""

from __future__ import annotations

from collections.abc import Sequence

from service.incidents.actors import actor_name
from service.incidents.catalogue import Source


def name(code: str) -> str:
    """An actor's English name."""
    return actor_name(code)


def names(codes: Sequence[str]) -> str:
    """`A`, `A and B`, `A, B and C`."""
    spelled = [name(code) for code in codes]
    return spelled[0] if len(spelled) == 1 else f"{', '.join(spelled[:-1])} and {spelled[-1]}"


def span(low: int, high: int | None) -> str:
    """A range as the sources allow it: `54`, `45 to 54`, `at least 94`."""
    if high is None:
        return f"at least {low}"
    return str(low) if low == high else f"{low} to {high}"


def reported(count: int | None, low: int | None, high: int | None) -> str:
    """An incident's count as its report gives it."""
    if count is not None and low is not None and (low, high) != (count, count):
        return f"{count} (the sources give {span(low, high)})"
    if count is not None:
        return str(count)
    if low is not None:
        return span(low, high)
    return "no number given"


def source(given: Source) -> str:
    """`AFP (quoting the Russian foreign ministry)`."""
    return given.outlet if given.quoted is None else f"{given.outlet} (quoting {given.quoted})"


def sources(given: Sequence[Source]) -> str:
    """Every source of an incident, in words."""
    return "; ".join(source(each) for each in given) or "no source recorded"
