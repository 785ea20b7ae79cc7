"""Actors: ISO 3166-1 countries and the organisations EU, NATO and UN."""

import unicodedata
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


def country_codes() -> list[str]:
    """Every ISO 3166-1 code, alpha-2 and alpha-3."""
    return [code for code in _ALIASES if code not in ORGANISATIONS]


def actor_code(value: str) -> str | None:
    """The canonical code (upper-case alpha-2, or EU/NATO/UN) for `value`, or None."""
    return _ALIASES.get(value.strip().upper())


NOT_AN_ACTOR: Final = "is not an ISO 3166-1 code, EU, NATO or UN"  # what a field holding one says


class NotAnActor(ValueError):
    """A code that names no actor: not ISO 3166-1, EU, NATO or UN."""

    def __init__(self, value: str) -> None:
        super().__init__(f"{value!r} is not an actor code")
        self.value = value


def canonical_actor(value: str) -> str:
    """The canonical code for `value`; NotAnActor when it names no actor."""
    code = actor_code(value)
    if code is None:
        raise NotAnActor(value)
    return code


def actor_name(code: str) -> str:
    """The English name of a canonical actor code."""
    return NAMES[code]


_COUNTRIES: Final = frozenset(country.alpha_2 for country in pycountry.countries)
_REGIONS: Final = frozenset(str(region.code) for region in pycountry.subdivisions)


def country_code(value: str) -> str | None:
    """The alpha-2 code of a country (not an organisation) for `value`, or None."""
    code = actor_code(value)
    return code if code in _COUNTRIES else None


def region_code(value: str) -> str | None:
    """The canonical ISO 3166-2 code for `value` ('ua-09' -> 'UA-09'), or None."""
    code = value.strip().upper()
    return code if code in _REGIONS else None


def place_key(country: str, name: str, geonames_id: int | None) -> str:
    """What identifies a place: its GeoNames id where given, else country and name."""
    if geonames_id is not None:
        return f"geonames:{geonames_id}"
    return f"{country}:{normalised_name(name)}"


def normalised_name(name: str) -> str:
    """A place name without case, accents or repeated spaces ('Kreminna ' == 'kreminna')."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.replace("\u2019", "'").split())
