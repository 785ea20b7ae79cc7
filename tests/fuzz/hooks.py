"""schemathesis hooks for the fuzzing run (loaded through SCHEMATHESIS_HOOKS).

`POST /v1/incidents:batch` takes NDJSON, which schemathesis cannot write by itself:
the document describes one line, so a generated report (or list of them) becomes
one JSON document per line.
"""

from typing import Any

import msgspec
import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    lines = value if isinstance(value, list) else [value]
    return b"".join(msgspec.json.encode(line) + b"\n" for line in lines)
