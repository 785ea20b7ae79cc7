"""Which representation a request gets from its Accept header."""

from __future__ import annotations

import pytest

from service.http.representations import Representation, choose


@pytest.mark.parametrize(
    ("accept", "offers_csv", "expected"),
    [
        (None, True, "json"),
        (b"*/*", True, "json"),
        (b"application/json", True, "json"),
        (b"text/csv", True, "csv"),
        (b"TEXT/CSV; charset=utf-8", True, "csv"),
        (b"text/csv, */*;q=0.1", True, "csv"),
        (b"text/csv, */*", True, "csv"),  # named outright beats the wildcard at the same q
        (b"application/json, text/csv", True, "json"),  # a full tie: the default
        (b"text/csv;q=0.5, application/json", True, "json"),
        (b"application/json;q=0.2, text/csv;q=0.9", True, "csv"),
        (b"text/*", True, "csv"),
        (b"text/csv;q=0, application/json", True, "json"),
        (b"text/html,application/xhtml+xml,*/*;q=0.8", True, "json"),  # a browser
        (b"application/xml", True, "json"),  # neither: JSON, as before CSV existed
        (b"text/csv", False, None),
        (b"text/csv;q=1, application/json;q=0", False, None),
        (b"text/csv, application/json;q=0.5", False, "json"),
        (b"text/csv, */*;q=0.1", False, "json"),
        (b"text/plain", False, "json"),
        (b"text/csv;q=0", False, "json"),
        (b"text/csv;q=oops", False, "json"),
    ],
)
def test_accept_chooses_the_representation(
    accept: bytes | None, offers_csv: bool, expected: Representation | None
) -> None:
    assert choose(accept, offers_csv) == expected
