"""`legation import`: batches, a summary, and idempotent re-runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from service.ops.demo import DEMO_FILE, load_demo
from service.ops.imports import import_file
from tests.factories import expulsion, sanctions_round, territorial_control


def write(path: Path, *bodies: Any) -> Path:
    path.write_bytes(b"\n".join(msgspec.json.encode(body) for body in bodies) + b"\n")
    return path


async def test_importing_a_file_twice_records_each_incident_once(
    dsn: str, tmp_path: Path, pool: asyncpg.Pool[Any]
) -> None:
    path = write(tmp_path / "reports.ndjson", expulsion(), sanctions_round(), territorial_control())
    first = await import_file(dsn, path, batch_size=2)
    second = await import_file(dsn, path, batch_size=2)
    assert (first.imported, first.skipped, first.failed) == (3, 0, [])
    assert (second.imported, second.skipped, second.failed) == (0, 3, [])
    assert await pool.fetchval("SELECT count(*) FROM events") == 3


async def test_bad_lines_fail_alone_and_are_named(dsn: str, tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.ndjson", expulsion(), expulsion(count=0), sanctions_round())
    with path.open("ab") as file:
        file.write(b"{oops\n")
    summary = await import_file(dsn, path)
    assert summary.imported == 2
    assert [(e.line, e.field) for e in summary.failed] == [(2, "count"), (4, "body")]


async def test_a_line_with_a_nul_character_fails_alone(
    dsn: str, tmp_path: Path, pool: asyncpg.Pool[Any]
) -> None:
    nul = expulsion(sources=[{"outlet": "AFP", "url": "https://a.example/\u0000x"}])
    path = write(tmp_path / "nul.ndjson", expulsion(), nul, sanctions_round())
    summary = await import_file(dsn, path)
    assert summary.imported == 2
    assert [(e.line, e.field) for e in summary.failed] == [(2, "sources[0].url")]
    assert await pool.fetchval("SELECT count(*) FROM events") == 2


async def test_the_demo_loads_once_into_an_empty_log(dsn: str, pool: asyncpg.Pool[Any]) -> None:
    lines = [line for line in DEMO_FILE.read_bytes().splitlines() if line.strip()]
    assert await load_demo(dsn) == len(lines) == 10
    assert await load_demo(dsn) == 0
    kinds = await pool.fetch("SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
    assert [(row[0], row[1]) for row in kinds] == [
        ("expulsion.reported", 8),
        ("sanctions_round.reported", 1),
        ("territorial_control.reported", 1),
    ]
