"""Query, path and header parameters in the OpenAPI document, as exact as the server is.

Litestar writes every optional parameter as `oneOf [T, null]`, integer bounds as
floats and codes as bare strings; clients and fuzzers then send what the server
must refuse. Here codes become enums of what `service.incidents.actors` accepts,
and event types the catalogue's.
"""

from collections.abc import Iterator
from typing import Any

from litestar.openapi.spec import OpenAPI, OpenAPIType, Parameter, Reference, Schema

from service.http.headers import IF_MATCH
from service.incidents.actors import ORGANISATIONS, country_codes
from service.incidents.catalogue import EVENT_TYPES

REF = "#/components/schemas/{name}"
ACTOR = "ActorCode"
COUNTRY = "CountryCode"
# The query parameter named `country` of territories is a place's country, never an organisation.
COUNTRY_ONLY = {("/v1/territories", "country")}
ACTOR_NAMES = {"code", "counterpart", "country", "controller"}
REGION = Schema(
    type=OpenAPIType.STRING,
    pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$",
    description="An ISO 3166-2 region code, e.g. UA-09",
)


def refine(document: OpenAPI) -> None:
    """Codes as enums, regions as a pattern, integer bounds as integers, null beside choices."""
    assert document.components.schemas is not None
    document.components.schemas[ACTOR] = _codes(
        [*country_codes(), *ORGANISATIONS],
        "A country (ISO 3166-1 alpha-2 or alpha-3) or EU, NATO, UN",
    )
    document.components.schemas[COUNTRY] = _codes(
        country_codes(), "A country: ISO 3166-1 alpha-2 or alpha-3"
    )
    for path, parameter in _parameters(document):
        _exact_bounds(parameter.schema)
        _null_apart(parameter)
        if parameter.name in ACTOR_NAMES:
            name = COUNTRY if (path, parameter.name) in COUNTRY_ONLY else ACTOR
            parameter.schema = _coded(parameter.schema, Reference(ref=REF.format(name=name)))
        elif parameter.name == "region":
            parameter.schema = REGION
        elif parameter.name == "If-Match":
            parameter.schema = Schema(type=OpenAPIType.STRING, max_length=64, pattern=IF_MATCH)
        elif parameter.name == "event_type":
            parameter.schema = Schema(type=OpenAPIType.STRING, enum=list(EVENT_TYPES))


def _codes(codes: list[str], description: str) -> Schema:
    return Schema(
        type=OpenAPIType.STRING,
        enum=sorted(codes),
        description=f"{description}; case does not matter",
    )


def _parameters(document: OpenAPI) -> Iterator[tuple[str, Parameter]]:
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "patch", "delete"):
            operation = getattr(item, method, None)
            for parameter in getattr(operation, "parameters", None) or ():
                if isinstance(parameter, Parameter):
                    yield path, parameter


def _coded(schema: Any, code: Reference) -> Schema | Reference:
    """`code` in place of a string schema; a list of codes keeps its shape."""
    nested = getattr(schema, "one_of", None) or ()
    listed = [item for item in nested if getattr(item, "type", None) == OpenAPIType.ARRAY]
    if listed or getattr(schema, "type", None) == OpenAPIType.ARRAY:
        max_items = getattr(schema, "max_items", None)
        return Schema(type=OpenAPIType.ARRAY, items=code, max_items=max_items)
    return code


def _null_apart(parameter: Parameter) -> None:
    """An optional choice (`kind`, `sort`) as `oneOf [enum of strings, null]`, not one enum
    holding null: generators make a type of each member of `type: [null, string]`. The
    server reads `?kind=null` as no filter, so null stays a value."""
    schema = parameter.schema
    choices = getattr(schema, "enum", None) or ()
    if isinstance(schema, Schema) and None in choices and isinstance(schema.type, list):
        (kind,) = [kind for kind in schema.type if kind != OpenAPIType.NULL]
        values = [choice for choice in choices if choice is not None]
        choice = Schema(type=kind, enum=values)
        parameter.schema = Schema(
            one_of=[choice, Schema(type=OpenAPIType.NULL)], description=schema.description
        )


def _exact_bounds(schema: Any) -> None:
    """Integer bounds as integers: 2**62 as a float reads as 4611686018427388000."""
    for nested in getattr(schema, "one_of", None) or ():
        _exact_bounds(nested)
    for bound in ("minimum", "maximum"):
        value = getattr(schema, bound, None)
        if isinstance(value, float) and value.is_integer():
            setattr(schema, bound, int(value))
