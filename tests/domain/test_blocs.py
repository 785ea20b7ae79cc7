"""Blocs: membership by day, and the data file's checks."""

from __future__ import annotations

from datetime import date

import pytest

from service.incidents.blocs import BLOCS, DATA, _load, bloc


def test_the_united_kingdom_is_on_the_eu_side_through_2020_01_31_only() -> None:
    eu = BLOCS["EU"]
    assert "GB" in eu.side(date(2020, 1, 31))
    assert "GB" not in eu.side(date(2020, 2, 1))
    assert "GB" not in eu.side(date(1972, 12, 31))
    assert "EU" in eu.side(date(2022, 4, 5))  # the bloc itself is on its side


def test_nato_grows_through_finland_and_sweden() -> None:
    nato = BLOCS["NATO"]
    assert len(nato.side(date(2022, 4, 5))) == 30 + 1  # 30 members and NATO itself
    assert "FI" not in nato.side(date(2023, 4, 3))
    assert "FI" in nato.side(date(2023, 4, 4))
    assert "SE" in nato.side(date(2024, 3, 7))
    assert len(nato.side(date(2024, 3, 7))) == 32 + 1


def test_the_eu_had_27_members_in_april_2022() -> None:
    assert len(BLOCS["EU"].side(date(2022, 4, 5)) - {"EU"}) == 27
    assert bloc(" eu ") is BLOCS["EU"]
    assert bloc("UN") is None


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ('{ code = "XX", joined = 2000-01-01 }', "'XX' is not an ISO 3166-1"),
        ('{ code = "FR", joined = 2000-01-01, left = 1999-01-01 }', "FR left before it joined"),
    ],
)
def test_the_data_file_is_checked_when_loaded(member: str, message: str) -> None:
    text = f'[EU]\nname = "x"\nsource = "y"\nmembers = [{member}]\n'
    with pytest.raises(ValueError, match=message):
        _load(text)
    with pytest.raises(ValueError, match="UK is not an organisation"):
        _load('[UK]\nname = "x"\nsource = "y"\nmembers = []\n')


def test_the_data_file_names_its_sources() -> None:
    text = DATA.read_text(encoding="utf-8")
    assert "Source:" in text
    assert all(found.source for found in BLOCS.values())
