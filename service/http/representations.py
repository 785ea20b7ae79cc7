"""Which representation a request gets: JSON, or CSV where a route offers it (`Accept`).

The edge and the routes ask the same question of the same header, so an answer
kept in memory for one representation is never replayed for the other.
"""

from __future__ import annotations

from typing import Final, Literal

from litestar.types import Scope

from service.http.problems import Problem

JSON: Final = "application/json"
CSV: Final = "text/csv"  # Litestar adds `; charset=utf-8` to every text/ type
Representation = Literal["json", "csv"]
# Set by the before-request hook on routes that offer CSV: what they are to answer in.
SCOPE_KEY: Final = "legation_representation"
# The ranges each offer matches, most specific first (RFC 9110, 12.5.1).
_RANGES: Final = {"json": (JSON, "application/*", "*/*"), "csv": (CSV, "text/*", "*/*")}


class NotAcceptable(Problem):
    """The request accepts only representations the route does not have."""

    status, slug, title = 406, "not-acceptable", "No acceptable representation"


def choose(accept: bytes | None, offers_csv: bool) -> Representation | None:
    """JSON unless the request prefers CSV where it is offered; None (406) when the request
    accepts CSV and not JSON from a route without CSV.

    A header accepting neither gets JSON, as before CSV existed (RFC 9110 allows it).
    """
    if accept is None:
        return "json"
    text = accept.decode("latin-1").lower()
    if "csv" not in text and "text/" not in text:
        return "json"  # the usual headers (*/*, application/json) are not parsed
    json, csv = _quality(text, "json"), _quality(text, "csv")
    if offers_csv and csv[0] > 0 and csv > json:
        return "csv"
    if not offers_csv and csv[0] > 0 and json[0] == 0:
        return None
    return "json"


def _quality(accept: str, offer: Representation) -> tuple[float, int]:
    """The offer's q (from its most specific matching range) and how specific that range
    is (2 named, 1 `type/*`, 0 `*/*`), so that a tie goes to the type named outright."""
    ranges = _RANGES[offer]
    best: tuple[int, float] | None = None
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media not in ranges:
            continue
        specificity = len(ranges) - 1 - ranges.index(media)
        if best is None or specificity > best[0]:
            best = (specificity, _q(params))
    return (0.0, 0) if best is None else (best[1], best[0])


def _q(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0  # a malformed weight accepts nothing rather than everything
    return 1.0


def chosen(scope: Scope) -> Representation | None:
    """What a route offering CSV is to answer in; None on a route that offers JSON only."""
    representation: Representation | None = scope.get(SCOPE_KEY)  # type: ignore[assignment]
    return representation


def not_acceptable(path: str) -> NotAcceptable:
    """The 406 naming what the route can answer."""
    detail = f"{path} answers only {JSON}, which the Accept header does not allow"
    return NotAcceptable(detail, acceptable=[JSON])
