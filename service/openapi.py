"""The OpenAPI document: Litestar's, with request bodies described by msgspec.

Routes decode their bodies strictly with msgspec (Litestar's own conversion is
lax), so each declares its body type in `opt["body"]` and this module writes the
request body schema, discriminator included, from msgspec's JSON Schema.
"""

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Example, OpenAPIMediaType, Reference, RequestBody

from service.events import Report
from service.incidents import Correction

REF = "#/components/schemas/{name}"

_SOURCE = {
    "outlet": "AFP",
    "url": "https://www.afp.com/",
    "quoted": "Russian foreign ministry",
    "published_at": "2022-04-18T10:00:00Z",
}
EXAMPLES: dict[Any, dict[str, Example]] = {
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


def _bodies(app: Litestar) -> dict[tuple[str, str], Any]:
    bodies: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            body = handler.opt.get("body")
            if body is not None:
                for method in handler.http_methods:
                    bodies[(route.path_format, method.lower())] = body
    return bodies


def add_request_bodies(app: Litestar) -> None:
    """Describe each route's msgspec body in the app's OpenAPI document."""
    document = app.openapi_schema
    bodies = _bodies(app)
    schemas, components = msgspec.json.schema_components(list(bodies.values()), ref_template=REF)
    assert document.components.schemas is not None
    document.components.schemas.update(dict(sorted(components.items())))
    for ((path, method), body), schema in zip(bodies.items(), schemas, strict=True):
        operation = getattr(document.paths[path], method) if document.paths else None
        if operation is None:
            continue
        media = OpenAPIMediaType(schema=_reference(schema), examples=EXAMPLES.get(body))  # type: ignore[arg-type]
        operation.request_body = RequestBody(content={"application/json": media}, required=True)


def _reference(schema: dict[str, Any]) -> Reference | dict[str, Any]:
    ref = schema.get("$ref")
    return Reference(ref=ref) if isinstance(ref, str) and len(schema) == 1 else schema


def document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document as served at /schema/openapi.json."""
    return app.openapi_schema.to_schema()
