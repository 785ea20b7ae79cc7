"""Actors: ISO 3166-1 countries and the organisations EU, NATO and UN."""

from typing import Final

import pycountry

ORGANISATIONS: Final = {
    "EU": "European Union",
    "NATO": "North Atlantic Treaty Organization",
    "UN": "United Nations",
}


def _country_names() -> dict[str, str]:
    return {country.alpha_2: country.name for country in pycountry.countries}


def _aliases() -> dict[str, str]:
    aliases = {country.alpha_3: country.alpha_2 for country in pycountry.countries}
    aliases.update({country.alpha_2: country.alpha_2 for country in pycountry.countries})
    aliases.update({code: code for code in ORGANISATIONS})
    return aliases


NAMES: Final = {**_country_names(), **ORGANISATIONS}
_ALIASES: Final = _aliases()


def actor_code(value: str) -> str | None:
    """The canonical code (upper-case alpha-2, or EU/NATO/UN) for `value`, or None."""
    return _ALIASES.get(value.strip().upper())


def actor_name(code: str) -> str:
    """The English name of a canonical actor code."""
    return NAMES[code]
