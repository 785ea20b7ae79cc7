"""`legation import FILE`: NDJSON reports appended in batches, safe to run twice."""

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import msgspec

from service.incidents.batches import (
    ParsedLine,
    ReportLine,
    content_key,
    numbered_lines,
    prepared_line,
)
from service.incidents.errors import FieldError
from service.log.database import connect
from service.log.envelope import Metadata
from service.log.store import AppendRefused, append_many

BATCH_SIZE = 500


class ImportSummary(msgspec.Struct):
    """What an import did, line by line."""

    imported: int = 0
    skipped: int = 0
    failed: list[FieldError] = msgspec.field(default_factory=list)


def _meta(source: str, parsed: ParsedLine) -> Metadata:
    # A line without an id gets one from its bytes, so a second import of the
    # same file finds every incident already there.
    key = None if parsed.client_id else content_key(parsed.raw)
    return Metadata(actor="import", correlation_id=f"import:{source}", idempotency_key=key)


def _prepared(
    source: str, chunk: Sequence[tuple[int, bytes]], summary: ImportSummary
) -> list[ReportLine]:
    ready: list[ReportLine] = []
    for number, raw in chunk:
        line = prepared_line(number, raw, partial(_meta, source))
        if isinstance(line, list):
            summary.failed += line
        else:
            ready.append(line)
    return ready


async def import_file(
    dsn: str,
    path: Path,
    on_progress: Callable[[int], None] = lambda done: None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Append the reports of an NDJSON file; bad lines are reported, not fatal."""
    lines = list(numbered_lines(await asyncio.to_thread(path.read_bytes)))
    summary = ImportSummary()
    conn = await connect(dsn)
    try:
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            ready = _prepared(path.name, chunk, summary)
            outcomes = await append_many(conn, [line.request for line in ready]) if ready else []
            for line, outcome in zip(ready, outcomes, strict=True):
                _count(summary, line, outcome)
            on_progress(len(chunk))
    finally:
        await conn.close()
    summary.failed.sort(key=lambda error: error.line or 0)
    return summary


def _count(summary: ImportSummary, line: ReportLine, outcome: object) -> None:
    if isinstance(outcome, AppendRefused):
        message = f"incident {line.incident_id} already exists with other content"
        summary.failed.append(FieldError(field="id", message=message, line=line.line))
    elif getattr(outcome, "duplicate", False):
        summary.skipped += 1
    else:
        summary.imported += 1


def count_lines(path: Path) -> int:
    """How many non-blank lines the file has (the progress bar's total)."""
    return sum(1 for _ in numbered_lines(path.read_bytes()))
