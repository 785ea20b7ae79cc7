"""GET /v1/schemas/{type}: the JSON Schema of an event type's data, as schemas/ publishes it.

Deliveries and stream messages name it in `dataschema` with the version their data
was written under; every published version stays served.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, QueryParameter

from service.http.problems import NotFound
from service.http.route_meta import route_meta
from service.incidents.catalogue import EVENT_TYPES

SCHEMAS_DIR: Final = Path(__file__).resolve().parents[3] / "schemas"
SCHEMA_JSON: Final = "application/schema+json"


@functools.cache
def published() -> dict[tuple[str, int], bytes]:
    """Every schemas/<type>.v<N>.json by type and version, read once."""
    found = {}
    for path in SCHEMAS_DIR.glob("*.v*.json"):
        name, _, version = path.stem.rpartition(".v")
        found[(name, int(version))] = path.read_bytes()
    return found


@get(
    "/v1/schemas/{event_type:str}",
    tags=["log"],
    summary="The JSON Schema of an event type's data",
    operation_id="getEventSchema",
    media_type=SCHEMA_JSON,
    opt=route_meta(problems=(404,), scope="public"),
    responses={
        200: ResponseSpec(
            dict[str, Any],
            media_type=SCHEMA_JSON,
            generate_examples=False,
            description="A JSON Schema (draft 2020-12) of the `data` of this type's events",
        )
    },
)
async def read_event_schema(
    event_type: FromPath[str],
    version: Annotated[
        int | None,
        QueryParameter(ge=1, le=1000, description="A published version (default: the current)"),
    ] = None,
) -> Response[bytes]:
    """The schema of `data` in events of this type (every event's `schema_version` is served)."""
    entry = EVENT_TYPES.get(event_type)
    schema = published().get((event_type, version or entry.schema_version)) if entry else None
    if schema is None:
        wanted = event_type if version is None else f"{event_type} version {version}"
        raise NotFound(f"no published schema of {wanted}; the types are {', '.join(EVENT_TYPES)}")
    return Response(schema, media_type=SCHEMA_JSON)


ROUTES = [read_event_schema]
