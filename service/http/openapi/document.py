"""The OpenAPI document: Litestar's, with bodies and problems described by msgspec.

Routes decode their bodies strictly with msgspec (Litestar's own conversion is
lax), so each declares its body type in its route_meta and this module writes the
request body schema, discriminator included, from msgspec's JSON Schema. Each
route lists there the problem statuses it answers; they are
documented as application/problem+json instead of Litestar's default 400 shape.
Its scope and headers there become the operation's `security` and the headers of
its answers; the webhooks are described beside the paths. The sibling modules
hold each part; this one puts them together for generators to read.
"""

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, NamedTuple, cast, get_args, get_origin

import msgspec
from litestar import Litestar, Response
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Example,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from service.http import csv_tables, rate_limits
from service.http.openapi import headers, security, tuples, webhooks
from service.http.openapi import links as openapi_links
from service.http.openapi import parameters as openapi_parameters
from service.http.problems import PROBLEM_JSON, ProblemDetails
from service.http.representations import CSV
from service.http.route_meta import RouteMeta, meta_of
from service.http.routes.stream import EVENT_STREAM
from service.incidents.catalogue import Report, Source
from service.incidents.domain import Correction, Retraction
from service.incidents.views import IncidentView
from service.subscribers.fanout import StreamEvent

REF = "#/components/schemas/{name}"
# Components for the unions routes take or answer.
UNION_NAMES: dict[Any, str] = {Report: "IncidentReport", IncidentView: "IncidentView"}
# `IncidentView | None` as annotated by a handler is answered as IncidentView.
UNION_NAMES_BY_MEMBERS = {frozenset(get_args(kind)): kind for kind in UNION_NAMES}

_SOURCE = {
    "outlet": "AFP",
    "url": "https://www.afp.com/",
    "quoted": "Russian foreign ministry",
    "published_at": "2022-04-18T10:00:00Z",
}
EXAMPLES: dict[Any, dict[str, Example | Reference]] = {
    Report: {
        "expulsion": Example(
            summary="Russia expels 15 Dutch diplomats",
            value={
                "kind": "expulsion",
                "occurred_on": "2022-04-18",
                "expelling": "RU",
                "expelled": "NL",
                "count": 15,
                "deadline": "2022-05-02",
                "grounds": "retaliation",
                "summary": "Russia declares 15 Dutch diplomats persona non grata.",
                "sources": [_SOURCE],
            },
        ),
        "sanctions_round": Example(
            summary="The EU's fifth sanctions package on Russia",
            value={
                "kind": "sanctions_round",
                "occurred_on": "2022-04-08",
                "imposing": "EU",
                "target": "RU",
                "round": 5,
                "label": "fifth package",
                "measures": ["trade", "financial", "travel"],
                "legal_acts": ["Council Regulation (EU) 2022/576"],
                "sources": [_SOURCE],
            },
        ),
        "territorial_control": Example(
            summary="Kreminna taken by Russian forces",
            value={
                "kind": "territorial_control",
                "occurred_on": "2022-04-19",
                "place": {
                    "name": "Kreminna",
                    "geonames_id": 704138,
                    "region": "UA-09",
                    "country": "UA",
                },
                "controller": "RU",
                "previous_controller": "UA",
                "reported_by": "Luhansk regional governor",
                "sources": [{"outlet": "Reuters", "quoted": "Serhiy Gaidai"}],
            },
        ),
        "disputed": Example(
            summary="A count the sources disagree on",
            value={
                "kind": "expulsion",
                "occurred_on": "2022-04-18",
                "expelling": "RUS",
                "expelled": "be",
                "count": 21,
                "count_range": [12, 21],
                "sources": [_SOURCE],
            },
        ),
        "joint": Example(
            summary="Two countries expel diplomats between them",
            value={
                "kind": "expulsion",
                "occurred_on": "2022-04-04",
                "expelling": "DE",
                "joint_expelling": ["FR"],
                "expelled": "RU",
                "count": 75,
                "sources": [_SOURCE],
            },
        ),
        "uncounted": Example(
            summary="An expulsion the sources give no number for",
            value={
                "kind": "expulsion",
                "occurred_on": "2022-04-05",
                "expelling": "IT",
                "expelled": "RU",
                "sources": [_SOURCE],
            },
        ),
        "at_least": Example(
            summary="Over 200 expelled: a range open at the top",
            value={
                "kind": "expulsion",
                "occurred_on": "2022-04-05",
                "expelling": "EU",
                "expelled": "RU",
                "count_range": [201, None],
                "sources": [_SOURCE],
            },
        ),
    },
    Retraction: {
        "duplicate": Example(
            summary="Retract a duplicate",
            value={
                "note": "duplicate of an earlier report",
                "duplicate_of": "5a1f4c2e-0b6d-4d8e-9a51-0c2f4e3d7b04",
            },
        )
    },
    Source: {
        "reuters": Example(
            summary="Cite another outlet",
            value={"outlet": "Reuters", "url": "https://www.reuters.com/"},
        )
    },
    Correction: {
        "count": Example(
            summary="Correct the count",
            value={"changes": {"count": 12}, "note": "Belgian ministry says 12"},
        )
    },
}


def openapi_config() -> OpenAPIConfig:
    """Where and how the document is served."""
    return OpenAPIConfig(
        title="Legation",
        version="1.0.0",
        description="An event-sourced ledger of diplomatic incidents.",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/")],
        use_handler_docstrings=True,
    )


class _Operation(NamedTuple):
    path: str
    method: str
    meta: RouteMeta
    answer: Any  # the Struct it answers with, or None
    declared: frozenset[int]  # statuses the handler describes itself (Litestar's `responses`)


def _operations(app: Litestar) -> list[_Operation]:
    """Every documented route handler's operations, with what it declared and answers."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.include_in_schema is False:
                continue
            meta = meta_of(handler) or RouteMeta(scope="public")
            answer = _answer_type(handler.parsed_fn_signature.return_type.annotation)
            declared = frozenset(getattr(handler, "responses", None) or ())
            for method in handler.http_methods:
                found.append(_Operation(route.path_format, method.lower(), meta, answer, declared))
    return found


def _answer_type(annotation: Any) -> Any:
    """The Struct (or union of Structs) a handler answers with, inside Response[...]."""
    if get_origin(annotation) is Response:
        (annotation,) = get_args(annotation)
    members = [member for member in get_args(annotation) if member is not type(None)]
    if members and all(_is_struct(member) for member in members):
        return UNION_NAMES_BY_MEMBERS.get(frozenset(members), annotation)
    return annotation if _is_struct(annotation) else None


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


class _Schemas(NamedTuple):
    """References to msgspec's schemas of what the document describes, in turn."""

    problem: dict[str, Any]
    bodies: Iterator[dict[str, Any]]
    answers: Iterator[dict[str, Any]]
    extras: dict[Any, Reference]  # described beside the operations: the stream's, webhooks'


def _components(document: OpenAPI, operations: list[_Operation]) -> _Schemas:
    """msgspec's schemas of bodies, answers and deliveries, added to the components."""
    bodies = [op.meta.body for op in operations if op.meta.body is not None]
    answers = [op.answer for op in operations if op.answer is not None]
    extras = [StreamEvent, *webhooks.ENVELOPES.values()]
    schemas, components = msgspec.json.schema_components(
        [ProblemDetails, *bodies, *answers, *extras], ref_template=REF
    )
    tuples.with_items(components)
    assert document.components.schemas is not None
    document.components.schemas.update(dict(sorted(components.items())))
    after_answers = 1 + len(bodies) + len(answers)
    return _Schemas(
        problem=schemas[0],
        bodies=iter(schemas[1 : 1 + len(bodies)]),
        answers=iter(schemas[1 + len(bodies) : after_answers]),
        extras={
            kind: _reference(schema)
            for kind, schema in zip(extras, schemas[after_answers:], strict=True)
        },
    )


def refine(app: Litestar) -> None:
    """Describe bodies, answers, problems, headers, keys and webhooks in the app's document."""
    document = app.openapi_schema
    operations = _operations(app)
    schemas = _components(document, operations)
    assert document.paths is not None
    for found in operations:
        operation = getattr(document.paths.get(found.path), found.method, None)
        if operation is not None:
            _describe(document, found, operation, schemas)
    openapi_parameters.refine(document)
    openapi_links.add(document)
    document.components.security_schemes = dict(security.SCHEMES)
    document.components.headers = {**headers.HEADERS}
    document.components.parameters = {**webhooks.PARAMETERS}
    document.webhooks = {
        delivery.name: webhooks.webhook(delivery, schemas.extras[webhooks.ENVELOPES[delivery.name]])
        for delivery in webhooks.DELIVERIES
    }


def _describe(
    document: OpenAPI, found: _Operation, operation: Operation, schemas: _Schemas
) -> None:
    """One operation: its body, answer, problems, security and the headers of each answer."""
    path, meta = found.path, found.meta
    if meta.body is not None:
        media = OpenAPIMediaType(
            schema=_named(next(schemas.bodies), meta.body, document),
            examples=dict(EXAMPLES.get(meta.body, {})) or None,
        )
        operation.request_body = RequestBody(content={"application/json": media}, required=True)
    if found.answer is not None:
        _answer(operation, _named(next(schemas.answers), found.answer, document))
        if meta.csv:
            _csv(operation, found.answer)
    if meta.ndjson_body:
        operation.request_body = _ndjson_body()
    if meta.answers:
        _media_types(operation, meta.answers)
    statuses = {*meta.problems, *_cross_cutting(path, operation, meta)} - found.declared
    operation.responses = _with_problems(
        operation.responses or {}, statuses, found.declared, schemas.problem
    )
    _not_modified(operation)
    _event_stream(operation)
    operation.security = security.requirement(meta.scope)
    headers.describe(operation.responses, meta.headers)


def _ndjson_body() -> RequestBody:
    """Bytes to a generator (none writes NDJSON), each line an IncidentReport.

    `x-line-schema` names the schema of a line: schemathesis writes lines from it
    (tests/fuzz/hooks.py).
    """
    lines = {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/x-ndjson",
        "description": "One IncidentReport per line; at most 10,000 lines, all or nothing.",
        "x-line-schema": {"$ref": REF.format(name="IncidentReport")},
    }
    media = OpenAPIMediaType(schema=cast(Schema, lines), example=NDJSON_EXAMPLE)
    return RequestBody(
        content={"application/x-ndjson": media},
        description="One IncidentReport per line (NDJSON).",
        required=True,
    )


NDJSON_EXAMPLE = (
    '{"kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU", "expelled": "NL", '
    '"count": 15, "sources": [{"outlet": "AFP"}]}\n'
    '{"kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU", "expelled": "BE", '
    '"count": 21, "count_range": [12, 21], "sources": [{"outlet": "AFP"}]}\n'
)


def _cross_cutting(path: str, operation: Operation, meta: RouteMeta) -> set[int]:
    """The statuses every route may answer for reasons of its own kind, not its own logic."""
    statuses = {500}
    if meta.scope != "public":
        statuses |= {401, 403}  # reads too, under LEGATION_PUBLIC_READS=false
    if path not in rate_limits.EXEMPT:
        statuses.add(429)
    if path != "/health":
        statuses.add(503)  # the database is unreachable (or, for reads, behind min_position)
    statuses.add(422)  # a body or parameter the route refuses, or a query name it does not take
    if not meta.csv:
        statuses.add(406)  # Accept: text/csv (and not JSON) where no CSV is offered
    return statuses


SSE = Schema(
    type=OpenAPIType.STRING,
    description="Server-Sent Events: messages of `id:`, `event:` and `data:` lines (`data:` "
    "holds JSON), each ended by a blank line; lines starting with `:` are comments "
    "(`: heartbeat`). The route's description says what `data:` holds.",
    examples=[': connected\n\nid: 7\nevent: expulsion.reported\ndata: {"position": 7, ...}\n\n'],
)


def _event_stream(operation: Operation) -> None:
    """A stream's success answer as Server-Sent Events, where Litestar writes `{}`."""
    for response in (operation.responses or {}).values():
        content = getattr(response, "content", None) or {}
        if EVENT_STREAM in content:
            content[EVENT_STREAM].schema = SSE


def _not_modified(operation: Operation) -> None:
    names = {getattr(parameter, "name", None) for parameter in operation.parameters or ()}
    if "If-None-Match" in names and operation.responses is not None:
        operation.responses["304"] = OpenAPIResponse(description="Not Modified: the ETag matches")


def _with_problems(
    responses: dict[str, Any],
    statuses: set[int],
    declared: frozenset[int],
    problem_schema: dict[str, Any],
) -> dict[str, Any]:
    kept = {
        status: response
        for status, response in responses.items()
        if int(status) < 400 or int(status) in declared
    }
    media = OpenAPIMediaType(schema=_reference(problem_schema))
    for status in sorted(statuses):
        kept[str(status)] = OpenAPIResponse(
            description=HTTPStatus(status).phrase, content={PROBLEM_JSON: media}
        )
    return kept


def _named(schema: dict[str, Any], kind: Any, document: OpenAPI) -> Reference:
    """A reference to the schema of `kind`; a union is registered under its UNION_NAMES name."""
    if "$ref" in schema:
        return _reference(schema)
    if "discriminator" in schema:
        # The tags make the members exclusive: oneOf says so to generators.
        schema = {"oneOf": schema.pop("anyOf"), **schema}
    components: dict[str, Any] = document.components.schemas or {}
    components[UNION_NAMES[kind]] = schema
    return Reference(ref=REF.format(name=UNION_NAMES[kind]))


def _answer(operation: Operation, schema: Reference) -> None:
    """msgspec's schema for the success response, in place of Litestar's looser one.

    Litestar writes `list[Source]` fields of a subclassed Struct as `oneOf [Source, {}]`,
    which no value satisfies (it matches both); msgspec writes what it encodes.
    """
    for status, response in (operation.responses or {}).items():
        content = getattr(response, "content", None) or {}
        if int(status) < 300 and "application/json" in content:
            content["application/json"].schema = schema


# What each media type a route may answer by Accept holds.
ANSWER_SCHEMAS: dict[str, Schema] = {
    "image/svg+xml": Schema(type=OpenAPIType.STRING, description="An SVG image"),
    "application/vnd.vegalite.v5+json": Schema(
        type=OpenAPIType.OBJECT, description="A Vega-Lite 5 specification, its data inline"
    ),
}


def _media_types(operation: Operation, answers: tuple[str, ...]) -> None:
    """The 200 answer in each media type the route chooses between by Accept."""
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse):
        ok.content = {media: OpenAPIMediaType(schema=ANSWER_SCHEMAS[media]) for media in answers}


def _csv(operation: Operation, answer: Any) -> None:
    """The text/csv answer beside the JSON one, with its header row as the example."""
    described = Schema(
        type=OpenAPIType.STRING,
        description="RFC 4180 CSV (UTF-8, CRLF line ends) for Accept: text/csv: a header row, "
        "then a row per item of the JSON answer's list, on the same page; nested fields "
        "flattened (`place_name`), each `<name>_range` as `<name>_low` and `<name>_high`, "
        'lists joined by "; ", null as an empty cell. The next page is in the Link header.',
    )
    media = OpenAPIMediaType(schema=described, example=csv_tables.header(answer) + "\r\n")
    for status, response in (operation.responses or {}).items():
        content = getattr(response, "content", None) or {}
        if int(status) < 300 and "application/json" in content:
            content[CSV] = media


def _reference(schema: dict[str, Any]) -> Reference:
    # schema_components answers each top-level type with a bare $ref.
    return Reference(ref=schema["$ref"])


def document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document as served at /schema/openapi.json."""
    return app.openapi_schema.to_schema()
