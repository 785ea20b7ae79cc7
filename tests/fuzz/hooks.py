"""schemathesis hooks for the fuzzing run (loaded through SCHEMATHESIS_HOOKS).

`POST /v1/incidents:batch` takes NDJSON, which no generator writes: the document
describes the body as bytes and names the schema of one line in `x-line-schema`.
The fuzzer is given that line schema as the body's, and a generated report (or
list of them) becomes one JSON document per line.
"""

from typing import Any

import msgspec
import schemathesis

NDJSON = "application/x-ndjson"
BATCH = "/v1/incidents:batch"


@schemathesis.hook
def before_load_schema(ctx: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    media = raw_schema["paths"][BATCH]["post"]["requestBody"]["content"][NDJSON]
    media["schema"] = media["schema"]["x-line-schema"]


@schemathesis.serializer(NDJSON)
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    lines = value if isinstance(value, list) else [value]
    return b"".join(msgspec.json.encode(line) + b"\n" for line in lines)
