"""The contracts other languages program against: openapi.json and schemas/.

`python -m service.ops.contracts` (or `make contracts`) writes both from the code;
a test fails when the committed files differ from what this module generates.
"""

from pathlib import Path
from typing import Any

import msgspec

from service.app import create_app
from service.config import Settings
from service.http.openapi.document import document

# Served at GET /v1/schemas/{type}, which reads the files from there.
from service.http.routes.schemas import SCHEMAS_DIR as SCHEMAS_DIR
from service.incidents.catalogue import CATALOGUE, EventType

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "openapi.json"
# Building the app needs a DSN; nothing connects to it.
_UNUSED_DSN = "postgresql://contracts@localhost/contracts"


def render(value: Any) -> bytes:
    """Stable, reviewable JSON: sorted keys, two-space indent, final newline."""
    return msgspec.json.format(msgspec.json.encode(value, order="sorted"), indent=2) + b"\n"


def openapi_json() -> bytes:
    """The OpenAPI document the app serves at /schema/openapi.json."""
    return render(document(create_app(Settings(database_url=_UNUSED_DSN))))


def event_schema(entry: EventType) -> dict[str, Any]:
    """The JSON Schema of one event type's `data`."""
    schema = msgspec.json.schema(entry.data)
    # msgspec answers a Struct with a $ref into $defs; the type itself goes on top.
    definitions = schema.pop("$defs", {})
    schema |= definitions.pop(schema.pop("$ref").rsplit("/", 1)[1])
    if definitions:
        schema["$defs"] = definitions
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:legation:event:{entry.name}:v{entry.schema_version}",
        "title": entry.name,
        "description": f"`data` of {entry.name} events, schema_version {entry.schema_version}.",
        "x-schema-version": entry.schema_version,
        **schema,
    }


def event_schema_files() -> dict[str, bytes]:
    """schemas/<type>.json (the current version) and <type>.v<N>.json for every event type."""
    files = {}
    for entry in CATALOGUE:
        rendered = render(event_schema(entry))
        files[f"{entry.name}.json"] = rendered
        files[f"{entry.name}.v{entry.schema_version}.json"] = rendered
    return files


def published_schema_files() -> dict[str, int]:
    """The files of earlier versions, kept as published (never regenerated): name to version."""
    return {
        f"{entry.name}.v{version}.json": version
        for entry in CATALOGUE
        for version in range(1, entry.schema_version)
    }


def write() -> None:
    """Regenerate openapi.json and schemas/ from the code (earlier versions stay as they are)."""
    OPENAPI_FILE.write_bytes(openapi_json())
    SCHEMAS_DIR.mkdir(exist_ok=True)
    files = event_schema_files()
    for stale in SCHEMAS_DIR.glob("*.json"):
        if stale.name not in files and stale.name not in published_schema_files():
            stale.unlink()
    for name, content in files.items():
        (SCHEMAS_DIR / name).write_bytes(content)


if __name__ == "__main__":
    write()
    print(f"wrote {OPENAPI_FILE.name} and {len(event_schema_files())} files in {SCHEMAS_DIR.name}/")
