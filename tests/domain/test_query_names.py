"""Query parameter names a route does not take."""

from __future__ import annotations

import pytest

from service.http.query_names import unknown_names

TAKEN = frozenset({"limit", "cursor", "as_of"})


@pytest.mark.parametrize(
    ("query", "unknown"),
    [
        (b"limit=2&cursor=x", []),
        (b"q=Kreminna", ["q"]),
        (b"disputed", ["disputed"]),  # no value: Litestar alone would never see it
        (b"q=&limit=1&q=2&zz=1", ["q", "zz"]),  # each once, in the order given
        (b"li%6Dit=1&as%5Fof=2022-01-01", []),  # names are compared decoded
        (b"Limit=1", ["Limit"]),  # as case-sensitive as Litestar's parsing
        (b"&&limit=1&", []),
    ],
)
def test_unknown_names_are_those_the_route_does_not_take(query: bytes, unknown: list[str]) -> None:
    assert unknown_names(query, TAKEN) == unknown
