"""Batches of reports as NDJSON: parsing every line, and the appends they become.

The HTTP batch (all or nothing) and `legation import` (line by line) share this.
"""

import hashlib
from collections.abc import Callable, Iterable
from typing import Final
from uuid import UUID

import msgspec

from service.incidents.catalogue import Incident, Report
from service.incidents.domain import decide_report, report_event, stream_name
from service.incidents.errors import FieldError, Invalid, field_error
from service.incidents.nul import nul_error
from service.log.envelope import Metadata
from service.log.store import AppendRequest

MAX_LINES: Final = 10_000
_decoder = msgspec.json.Decoder(Report)


# gc=False: immutable values, a thousand per batch, that cannot form a cycle;
# untracked, they do not bring on the collector's full passes.
class ParsedLine(msgspec.Struct, frozen=True, gc=False):
    """A valid line: its number, bytes, the client's incident id and the incident."""

    line: int
    raw: bytes
    client_id: UUID | None
    incident: Incident


class ReportLine(msgspec.Struct, frozen=True, gc=False):
    """A line turned into its append: a new stream, expected at version 0."""

    line: int
    incident_id: UUID
    request: AppendRequest


def numbered_lines(body: bytes) -> Iterable[tuple[int, bytes]]:
    """Non-blank lines with their 1-based line numbers."""
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def parse_line(number: int, line: bytes) -> ParsedLine | list[FieldError]:
    """The incident a line reports, or what is wrong with it (each error names the line)."""
    if (nul := nul_error(line)) is not None:
        return [msgspec.structs.replace(nul, line=number)]
    try:
        report = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        return [msgspec.structs.replace(field_error(exc), line=number)]
    except msgspec.DecodeError as exc:
        return [FieldError(field="body", message=f"not valid JSON: {exc}", line=number)]
    except RecursionError:
        return [FieldError(field="body", message="is nested too deeply", line=number)]
    try:
        incident = decide_report(report)
    except Invalid as exc:
        return _on_line(exc, number)
    return ParsedLine(number, line, report.id, incident)


def _on_line(exc: Invalid, number: int) -> list[FieldError]:
    return [msgspec.structs.replace(error, line=number) for error in exc.errors or []]


def content_key(line: bytes) -> str:
    """An idempotency key from a line's bytes: re-importing the line appends nothing."""
    return "sha256:" + hashlib.sha256(line.strip()).hexdigest()


def report_line(parsed: ParsedLine, meta: Metadata) -> ReportLine | list[FieldError]:
    """The append a valid line becomes (or why not: it names itself in responds_to)."""
    try:
        incident_id, event = report_event(parsed.client_id, parsed.incident, meta)
    except Invalid as exc:
        return _on_line(exc, parsed.line)
    request = AppendRequest(stream_name(incident_id), 0, (event,))
    return ReportLine(parsed.line, incident_id, request)


def prepared_line(
    number: int, line: bytes, meta_of: Callable[[ParsedLine], Metadata]
) -> ReportLine | list[FieldError]:
    """A line turned into its append (with metadata from `meta_of`), or what is wrong with it."""
    parsed = parse_line(number, line)
    if isinstance(parsed, list):
        return parsed
    return report_line(parsed, meta_of(parsed))
