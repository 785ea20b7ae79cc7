"""schemathesis over the committed openapi.json against a real `legation serve`.

No server error and no response that breaks the document, in every phase
(examples, coverage, fuzzing, stateful); the cases are fixed by the seed in
tests/fuzz/schemathesis.toml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers import serving

ROOT = Path(__file__).parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# An event stream never ends: tested in process/test_sse.py and test_standings_stream.py.
STREAMS = ("/v1/events/stream", "/v1/standings/stream")


def test_schemathesis_finds_no_server_error_and_no_spec_violation(dsn: str, admin_key: str) -> None:
    # Private webhook URLs are allowed so that generated subscriptions are not all refused
    # for their (unresolvable) hosts, and the stateful phase reaches them.
    settings = {"rate_limit": "0", "read_wait_seconds": "0.05", "webhook_allow_private": "true"}
    with serving(dsn, **settings) as base:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(ROOT / "tests" / "fuzz" / "schemathesis.toml"),
                "run",
                str(ROOT / "openapi.json"),
                "--url",
                base,
                "--header",
                f"Authorization: Bearer {admin_key}",
                *(arg for path in STREAMS for arg in ("--exclude-path", path)),
            ],
            env=os.environ | {"SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    # Every operation but the streams was reached, in every phase.
    assert f"Tested: {operations() - len(STREAMS)}" in run.stdout, run.stdout[-3_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in run.stdout, run.stdout[-3_000:]


def operations() -> int:
    """How many operations the committed openapi.json documents."""
    document = json.loads((ROOT / "openapi.json").read_text())
    methods = {"get", "put", "post", "patch", "delete"}
    return sum(len(methods & set(item)) for item in document["paths"].values())
