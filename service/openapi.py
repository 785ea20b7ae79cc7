"""The OpenAPI document: Litestar's, with bodies and problems described by msgspec.

Routes decode their bodies strictly with msgspec (Litestar's own conversion is
lax), so each declares its body type in `opt["body"]` and this module writes the
request body schema, discriminator included, from msgspec's JSON Schema. Each
route lists the problem statuses it answers in `opt["problems"]`; they are
documented as application/problem+json instead of Litestar's default 400 shape.
"""

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Reference,
    RequestBody,
)

from service.events import Report
from service.incidents import Correction
from service.problems import PROBLEM_JSON, ProblemDetails

REF = "#/components/schemas/{name}"

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


def _operations(app: Litestar) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, opt) of every documented route handler."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.include_in_schema is False:
                continue
            for method in handler.http_methods:
                found.append((route.path_format, method.lower(), handler.opt))
    return found


def refine(app: Litestar) -> None:
    """Describe msgspec bodies and problem responses in the app's OpenAPI document."""
    document = app.openapi_schema
    operations = [(path, method, opt) for path, method, opt in _operations(app)]
    bodies = [opt["body"] for _, _, opt in operations if "body" in opt]
    schemas, components = msgspec.json.schema_components(
        [ProblemDetails, *bodies], ref_template=REF
    )
    assert document.components.schemas is not None
    assert document.paths is not None
    document.components.schemas.update(dict(sorted(components.items())))
    problem_schema, body_schemas = schemas[0], iter(schemas[1:])
    for path, method, opt in operations:
        item = document.paths.get(path)
        operation = getattr(item, method, None)
        if operation is None:
            continue
        if "body" in opt:
            media = OpenAPIMediaType(
                schema=_reference(next(body_schemas)),
                examples=dict(EXAMPLES.get(opt["body"], {})) or None,
            )
            operation.request_body = RequestBody(content={"application/json": media}, required=True)
        operation.responses = _with_problems(operation.responses or {}, opt, problem_schema)


def _with_problems(
    responses: dict[str, Any], opt: dict[str, Any], problem_schema: dict[str, Any]
) -> dict[str, Any]:
    kept = {status: response for status, response in responses.items() if int(status) < 400}
    media = OpenAPIMediaType(schema=_reference(problem_schema))
    for status in sorted({*opt.get("problems", ()), 500}):
        kept[str(status)] = OpenAPIResponse(
            description=HTTPStatus(status).phrase, content={PROBLEM_JSON: media}
        )
    return kept


def _reference(schema: dict[str, Any]) -> Reference:
    # schema_components answers each top-level type with a bare $ref.
    return Reference(ref=schema["$ref"])


def document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document as served at /schema/openapi.json."""
    return app.openapi_schema.to_schema()
