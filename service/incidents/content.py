"""What an incident's content may hold and whom it names: checks, canonical codes, actors.

Pure (no I/O): used when a report or correction is decided, and by the read models.
"""

from typing import Any, Final

import msgspec
from msgspec import Struct

from service.incidents.actors import NOT_AN_ACTOR, actor_code, country_code, region_code
from service.incidents.catalogue import Expulsion, Incident, SanctionsRound, TerritorialControl
from service.incidents.errors import FieldError, Invalid

CONTESTED: Final = "contested"
# The two roles of each kind that name different actors: nobody acts on itself.
ROLES: Final[dict[type[Struct], tuple[str, str]]] = {
    Expulsion: ("expelling", "expelled"),
    SanctionsRound: ("imposing", "target"),
    TerritorialControl: ("controller", "previous_controller"),
}


def validated(incident: Incident, prefix: str = "") -> Incident:
    """The incident with canonical codes; Invalid naming every broken rule."""
    errors: list[FieldError] = []
    codes = _canonical_roles(incident, prefix, errors)
    first, second = ROLES[type(incident)]
    if codes.get(first) is not None and codes.get(first) == codes.get(second):
        errors.append(FieldError(_path(prefix, second), f"must differ from {first}"))
    changes: dict[str, Any] = dict(codes)
    if isinstance(incident, TerritorialControl):
        changes["place"] = _place(incident, prefix, errors)
    if isinstance(incident, Expulsion):
        changes |= _joint_parties(incident, codes, prefix, errors)
        errors += _expulsion_errors(incident, prefix)
    if errors:
        raise Invalid("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return msgspec.structs.replace(incident, **changes)


def _canonical_roles(
    incident: Incident, prefix: str, errors: list[FieldError]
) -> dict[str, str | None]:
    codes: dict[str, str | None] = {}
    for name in ROLES[type(incident)]:
        value: str | None = getattr(incident, name)
        if value is None:
            codes[name] = None
            continue
        contested = isinstance(incident, TerritorialControl) and value.lower() == CONTESTED
        code = CONTESTED if contested else actor_code(value)
        if code is None:
            errors.append(FieldError(_path(prefix, name), NOT_AN_ACTOR))
        codes[name] = code
    return codes


def _place(incident: TerritorialControl, prefix: str, errors: list[FieldError]) -> Any:
    place = incident.place
    country = country_code(place.country)
    if country is None:
        errors.append(FieldError(_path(prefix, "place.country"), "is not an ISO 3166-1 country"))
        return place
    region = None
    if place.region is not None:
        region = region_code(place.region)
        if region is None or not region.startswith(f"{country}-"):
            message = f"is not an ISO 3166-2 region of {country}"
            errors.append(FieldError(_path(prefix, "place.region"), message))
    return msgspec.structs.replace(place, country=country, region=region or place.region)


def _joint_parties(
    incident: Expulsion, codes: dict[str, str | None], prefix: str, errors: list[FieldError]
) -> dict[str, tuple[str, ...]]:
    """The joint lists with canonical codes; no actor may be named twice across the sides."""
    if not (incident.joint_expelling or incident.joint_expelled):
        return {}
    seen = {code for code in (codes["expelling"], codes["expelled"]) if code is not None}
    joint: dict[str, tuple[str, ...]] = {}
    for name in ("joint_expelling", "joint_expelled"):
        canonical = []
        for index, value in enumerate(getattr(incident, name)):
            field = _path(prefix, f"{name}[{index}]")
            code = actor_code(value)
            if code is None:
                errors.append(FieldError(field, NOT_AN_ACTOR))
            elif code in seen:
                errors.append(FieldError(field, f"names {code}, already a party to the expulsion"))
            else:
                seen.add(code)
                canonical.append(code)
        joint[name] = tuple(canonical)
    return joint


def _expulsion_errors(incident: Expulsion, prefix: str) -> list[FieldError]:
    errors = []
    if incident.count_range is not None:
        low, high = incident.count_range
        if high is not None and low > high:
            errors.append(
                FieldError(_path(prefix, "count_range"), "must be [low, high] with low <= high")
            )
        elif incident.count is not None and not (
            low <= incident.count and (high is None or incident.count <= high)
        ):
            message = "must hold count: low <= count <= high"
            errors.append(FieldError(_path(prefix, "count_range"), message))
    if incident.deadline is not None and incident.deadline < incident.occurred_on:
        errors.append(FieldError(_path(prefix, "deadline"), "must not be before occurred_on"))
    return errors


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def disputed(incident: Incident) -> bool:
    """Whether the sources give a range of counts rather than one number."""
    if not isinstance(incident, Expulsion) or incident.count_range is None:
        return False
    low, high = incident.count_range
    return low != high


def actors(incident: Incident) -> tuple[str, ...]:
    """The actors an incident involves (for the log's country filter), sorted."""
    if isinstance(incident, Expulsion):
        if incident.joint_expelling or incident.joint_expelled:
            sides = (incident.expelling, incident.expelled, *incident.joint_expelling)
            return tuple(sorted({*sides, *incident.joint_expelled}))
        return _pair(incident.expelling, incident.expelled)
    if isinstance(incident, SanctionsRound):
        return _pair(incident.imposing, incident.target)
    named = {incident.controller, incident.previous_controller, incident.place.country}
    return tuple(sorted(code for code in named if code is not None and code != CONTESTED))


def _pair(one: str, other: str) -> tuple[str, ...]:
    return (one, other) if one < other else (other, one)
