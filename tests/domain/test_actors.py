"""Actor codes, regions and place keys."""

from __future__ import annotations

import json
from pathlib import Path

import pycountry
import pytest

from service.incidents.actors import actor_code, actor_name, country_code, place_key, region_code


@pytest.mark.parametrize(
    ("given", "code"),
    [("RU", "RU"), ("rus", "RU"), ("Rus", "RU"), (" nld ", "NL"), ("eu", "EU"), ("nato", "NATO")],
)
def test_actor_codes_accept_alpha_2_and_alpha_3_in_any_case(given: str, code: str) -> None:
    assert actor_code(given) == code


@pytest.mark.parametrize("given", ["XX", "XYZ", "", "Russia", "E U"])
def test_unknown_actor_codes_are_none(given: str) -> None:
    assert actor_code(given) is None


def test_actor_names() -> None:
    assert actor_name("RU") == "Russian Federation"
    assert actor_name("EU") == "European Union"


def test_organisations_are_not_countries() -> None:
    assert country_code("ukr") == "UA"
    assert country_code("EU") is None
    assert country_code("UN") is None


def test_regions_are_iso_3166_2() -> None:
    assert region_code("ua-09") == "UA-09"
    assert region_code("UA-99") is None


def test_a_place_is_keyed_by_geonames_id_else_country_and_normalised_name() -> None:
    assert place_key("UA", "Kreminna", 704138) == place_key("UA", "Other name", 704138)
    assert place_key("UA", "  Kreminna ", None) == place_key("UA", "kreminna", None)
    assert place_key("UA", "Kramatorśk", None) == place_key("UA", "KRAMATORSK", None)
    assert place_key("UA", "Kreminna", None) != place_key("RU", "Kreminna", None)


def test_the_documented_codes_are_exactly_what_the_server_accepts() -> None:
    document = json.loads((Path(__file__).parents[2] / "openapi.json").read_text())
    actors = document["components"]["schemas"]["ActorCode"]["enum"]
    countries = document["components"]["schemas"]["CountryCode"]["enum"]
    assert {"RU", "RUS", "UA", "UKR", "EU", "NATO", "UN"} <= set(actors)
    assert all(actor_code(code) is not None for code in actors)
    assert all(country_code(code) is not None for code in countries)
    assert set(actors) - set(countries) == {"EU", "NATO", "UN"}
    # Every code the server accepts is documented (alpha-2 and alpha-3, upper case).
    assert len(countries) == 2 * len(pycountry.countries)
