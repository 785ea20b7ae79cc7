"""Blocs (EU, NATO): who was a member on which day, from the data in blocs.toml.

A bloc's *side* on a day is the bloc itself and every actor that was a member then;
the standings count a side by membership on each incident's date.
"""

import tomllib
from datetime import date
from pathlib import Path
from typing import Final

import msgspec

from service.incidents.actors import ORGANISATIONS, country_code

DATA: Final = Path(__file__).with_name("blocs.toml")


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    """One actor's membership: from `joined` through `left` (None: still a member)."""

    code: str
    joined: date
    left: date | None = None

    def on(self, day: date) -> bool:
        """Whether the actor was a member on `day` (membership ends at the end of `left`)."""
        return self.joined <= day and (self.left is None or day <= self.left)


class Bloc(msgspec.Struct, frozen=True, kw_only=True):
    """A bloc, where its membership data comes from, and every membership it has had."""

    code: str
    name: str
    source: str
    members: tuple[Membership, ...]

    def side(self, day: date) -> frozenset[str]:
        """The bloc and every actor that was a member on `day`."""
        return frozenset((self.code, *(m.code for m in self.members if m.on(day))))


def _load(text: str) -> dict[str, Bloc]:
    """The blocs of a blocs.toml text; ValueError naming what is wrong in it."""
    blocs = {}
    for code, table in tomllib.loads(text).items():
        bloc = msgspec.convert({"code": code, **table}, Bloc)
        for member in bloc.members:
            if country_code(member.code) != member.code:
                raise ValueError(f"{code}: {member.code!r} is not an ISO 3166-1 alpha-2 code")
            if member.left is not None and member.left < member.joined:
                raise ValueError(f"{code}: {member.code} left before it joined")
        if code not in ORGANISATIONS:
            raise ValueError(f"{code} is not an organisation actor")
        blocs[code] = bloc
    return blocs


BLOCS: Final = _load(DATA.read_text(encoding="utf-8"))


def bloc(code: str) -> Bloc | None:
    """The bloc with this code, in any case (None: not a bloc)."""
    return BLOCS.get(code.strip().upper())
