"""Lists flattened to CSV: the columns a type gives, and cells as the JSON answer holds them."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import msgspec
import pytest

from service.http import csv_tables
from service.http.routes.incidents import IncidentPage
from service.incidents.catalogue import Source
from service.projections.standings_views import CountryList


class Spot(msgspec.Struct, frozen=True):
    name: str
    region: str | None = None


class Seen(msgspec.Struct, frozen=True, tag="seen", tag_field="kind"):
    id: int
    on: date
    count_range: tuple[int, int | None] | None
    parties: list[str]
    spot: Spot | None
    sources: list[Source]
    shared: bool


class Heard(msgspec.Struct, frozen=True, tag="heard", tag_field="kind"):
    id: int
    on: date
    rumour: str
    shared: bool


class Page(msgspec.Struct, frozen=True):
    items: list[Seen | Heard]
    next_cursor: str | None = None


class Noted(msgspec.Struct, frozen=True):
    changes: dict[str, Any]


class Spotted(msgspec.Struct, frozen=True):
    spots: list[Spot]


class Odd(msgspec.Struct, frozen=True):
    items: list[Noted]


class Odder(msgspec.Struct, frozen=True):
    items: list[Spotted]


def rows(page: msgspec.Struct) -> list[list[str]]:
    body = csv_tables.encode(page)
    assert body.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


def test_columns_follow_the_types_each_kind_together_ahead_of_the_shared_ones() -> None:
    assert csv_tables.header(Page).split(",") == [
        "id", "kind", "on", "count_low", "count_high", "parties", "spot_name", "spot_region",
        "sources", "rumour", "shared",
    ]  # fmt: skip


def test_cells_hold_what_the_json_holds_ranges_split_and_nulls_empty() -> None:
    seen = Seen(1, date(2022, 4, 5), (201, None), ["FR", "DE"], Spot("Izium"),
                [Source(outlet="AFP"), Source(outlet="Reuters, London")], True)  # fmt: skip
    heard = Heard(2, date(2022, 4, 6), 'a "quoted",\nsplit rumour', False)
    body = csv_tables.encode(Page([seen]))
    assert body.count(b"\n") == body.count(b"\r\n") == 2  # RFC 4180: CRLF ends each record
    header, first, second = rows(Page([seen, heard]))
    assert dict(zip(header, first, strict=True)) == {
        "id": "1", "kind": "seen", "on": "2022-04-05", "count_low": "201", "count_high": "",
        "parties": "FR; DE", "spot_name": "Izium", "spot_region": "", "rumour": "",
        "sources": "AFP; Reuters, London", "shared": "true",
    }  # fmt: skip
    assert dict(zip(header, second, strict=True))["rumour"] == 'a "quoted",\nsplit rumour'
    assert dict(zip(header, second, strict=True))["shared"] == "false"


def test_text_a_spreadsheet_would_run_as_a_formula_is_shown_as_text() -> None:
    planted = [Source(outlet="=cmd|' /C calc'!A0"), Source(outlet="AFP")]
    seen = Seen(-1, date(2022, 4, 5), (-2, None), ["FR"], Spot("@SUM(A1)", "+1"), planted, True)
    starts = ("=", "+", "-", "@", "\t", "\r", "1")
    heard = [Heard(2, date(2022, 4, 6), start + "1+1", False) for start in starts]
    header, *cells = rows(Page([seen, *heard]))
    first = dict(zip(header, cells[0], strict=True))
    assert (first["spot_name"], first["spot_region"]) == ("'@SUM(A1)", "'+1")
    assert first["sources"] == "'=cmd|' /C calc'!A0; AFP"
    # Numbers are numbers, negative ones included: nothing is put before them.
    assert (first["id"], first["count_low"]) == ("-1", "-2")
    rumours = [dict(zip(header, row, strict=True))["rumour"] for row in cells[1:]]
    assert rumours == ["'=1+1", "'+1+1", "'-1+1", "'@1+1", "'\t1+1", "'\r1+1", "11+1"]


def test_an_empty_page_is_its_header_row() -> None:
    assert rows(Page([])) == [csv_tables.header(Page).split(",")]


@pytest.mark.parametrize(("page", "named"), [(Odd, "changes"), (Odder, "spots: .* list of Spot")])
def test_a_field_no_cell_can_say_is_refused_rather_than_dropped(
    page: type[msgspec.Struct], named: str
) -> None:
    with pytest.raises(TypeError, match=named):
        csv_tables.columns(page)


def test_the_served_lists_have_readable_columns() -> None:
    countries = csv_tables.header(CountryList).split(",")
    assert countries[:2] == ["code", "name"]
    for figure in ("expelled_foreign_diplomats", "own_diplomats_expelled", "balance"):
        assert {figure, f"{figure}_low", f"{figure}_high"} <= set(countries)
    assert "latest_received_imposing" in countries
    incidents = csv_tables.header(IncidentPage).split(",")
    assert incidents[:2] == ["id", "kind"]
    assert {"count_low", "count_high", "place_name", "sources", "corrections"} <= set(incidents)
