"""The batch command: every line of an NDJSON body decided, then appended in one
transaction, or none of them.

Used by POST /v1/incidents:batch; `legation import` shares the line preparation
(service/incidents/batches.py) but appends in batches of its own.
"""

import asyncio
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Final
from uuid import UUID

from service.incidents.batches import (
    MAX_LINES,
    ParsedLine,
    ReportLine,
    numbered_lines,
    prepared_line,
)
from service.incidents.errors import FieldError, Invalid
from service.log.envelope import Metadata
from service.log.store import Appended, AppendRefused, append_many

if TYPE_CHECKING:
    from service.log.store import Connection

_MAX_ERRORS = 100
# Lines parsed while the previous chunk is being appended. 250 and 125 measured
# alike; one chunk per batch (no overlap) was 5-20 % slower when the projector runs
# in another process, and about even when it shares this one.
CHUNK_LINES: Final = 250
# Each chunk's append is a subtransaction (sql/append_new_streams.sql): a batch of
# MAX_LINES lines must make fewer than the 64 a transaction keeps without overflowing.
SUBTRANSACTIONS_KEPT: Final = 64


def _refuse(errors: list[FieldError]) -> Invalid:
    errors.sort(key=lambda error: error.line or 0)
    first = errors[0]
    detail = f"line {first.line}: {first.field}: {first.message} (nothing was appended)"
    return Invalid(detail, errors=errors[:_MAX_ERRORS])


class BatchRefused(Exception):
    """A line's append was refused, so the whole batch is rolled back."""

    def __init__(self, line: ReportLine, refusal: AppendRefused) -> None:
        super().__init__(str(refusal))
        self.line, self.refusal = line, refusal


LineOutcome = tuple[ReportLine, Appended | AppendRefused]


class Parser:
    """Turns a batch's lines into appends, keeping every error and the ids seen so far."""

    def __init__(
        self, idempotency_key: str | None, meta_of: Callable[[str | None], Metadata]
    ) -> None:
        self.key, self.meta_of = idempotency_key, meta_of
        self.errors: list[FieldError] = []
        self.seen: dict[UUID, int] = {}

    def parse(self, numbered: list[tuple[int, bytes]]) -> list[ReportLine]:
        """The appends of these lines (the bad ones are left out and noted in `errors`)."""
        if numbered and numbered[-1][0] > MAX_LINES:  # a last line without its newline
            raise too_many_lines()
        ready = []
        for number, raw in numbered:
            line = prepared_line(number, raw, self._meta)
            if isinstance(line, list):
                self.errors += line
            elif (first := self.seen.setdefault(line.incident_id, number)) != number:
                message = f"repeats the incident id of line {first}"
                self.errors.append(FieldError(field="id", message=message, line=number))
            else:
                ready.append(line)
        return ready

    def _meta(self, parsed: ParsedLine) -> Metadata:
        line_key = f"{self.key}#{parsed.line}" if self.key else None
        return self.meta_of(line_key)


def too_many_lines() -> Invalid:
    """The 422 for a batch past MAX_LINES lines."""
    return Invalid(f"a batch holds at most {MAX_LINES} lines, blank ones included; split it")


def _chunks(body: bytes) -> Iterator[list[tuple[int, bytes]]]:
    lines = numbered_lines(body)
    while chunk := list(islice(lines, CHUNK_LINES)):
        yield chunk


async def _append(conn: "Connection", lines: list[ReportLine]) -> list[LineOutcome]:
    outcomes = await append_many(conn, [line.request for line in lines])
    return list(zip(lines, outcomes, strict=True))


async def append_batch(conn: "Connection", body: bytes, parser: Parser) -> list[LineOutcome]:
    """Parse and append every line in one transaction, or none of them.

    Lines are parsed a chunk at a time while the previous chunk is being appended:
    the database and this process work at once instead of in turn. Once a line is
    bad or refused nothing more is sent, but every line is still read, so that the
    answer names every bad line.
    """
    outcomes: list[LineOutcome] = []
    writing: asyncio.Task[list[LineOutcome]] | None = None
    refused = False
    async with conn.transaction():
        try:
            for chunk in _chunks(body):
                lines = parser.parse(chunk)
                if writing is not None:
                    written = await writing
                    outcomes += written
                    writing = None
                    refused = refused or _any_refused(written)
                if lines and not parser.errors and not refused:
                    writing = asyncio.create_task(_append(conn, lines))
                    await asyncio.sleep(0)  # the task sends its statement before parsing goes on
            if writing is not None:
                outcomes += await writing
        finally:
            if writing is not None and not writing.done():
                await asyncio.wait([writing])  # the connection is free only after it
        _refuse_any(outcomes, parser)
    return outcomes


def _any_refused(outcomes: list[LineOutcome]) -> bool:
    return any(isinstance(outcome, AppendRefused) for _, outcome in outcomes)


def _refuse_any(outcomes: list[LineOutcome], parser: Parser) -> None:
    """Roll the batch back (by raising) if a line is bad or the log refused one."""
    if parser.errors:
        raise _refuse(parser.errors)
    if not outcomes:
        raise Invalid("the batch holds no reports")
    for line, outcome in outcomes:
        if isinstance(outcome, AppendRefused):
            raise BatchRefused(line, outcome)
