"""POST /v1/incidents:batch: many reports as NDJSON, appended all or nothing."""

import asyncio
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler

from service.http.bodies import UnsupportedMediaType
from service.http.headers import POSITION
from service.http.problems import Conflict, FieldError, InvalidInput
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.incidents import IdempotencyKey, metadata
from service.incidents.batches import (
    MAX_LINES,
    ParsedLine,
    ReportLine,
    numbered_lines,
    prepared_line,
)
from service.log.envelope import Metadata
from service.log.store import Appended, AppendRefused, EventIdReused, append_many
from service.ops.metrics import Metrics

NDJSON: Final = ("application/x-ndjson", "application/jsonl", "application/ndjson")
_MAX_ERRORS = 100
# Lines parsed while the previous chunk is being appended. 250 and 125 measured
# alike; one chunk per batch (no overlap) was 5-20 % slower when the projector runs
# in another process, and about even when it shares this one.
CHUNK_LINES: Final = 250

if TYPE_CHECKING:
    from service.log.store import Connection


class BatchItem(msgspec.Struct, frozen=True, gc=False):  # one per line: left to refcounting
    """Where one line's incident is in the log (`duplicate`: it already was)."""

    line: int
    id: UUID
    position: int
    duplicate: bool


class BatchResult(msgspec.Struct, frozen=True):
    """The incidents of a batch, in line order."""

    items: list[BatchItem]
    last_position: int


def _refuse(errors: list[FieldError]) -> InvalidInput:
    errors.sort(key=lambda error: error.line or 0)
    first = errors[0]
    detail = f"line {first.line}: {first.field}: {first.message} (nothing was appended)"
    return InvalidInput(detail, errors=errors[:_MAX_ERRORS])


class BatchRefused(Exception):
    """A line's append was refused, so the whole batch is rolled back."""

    def __init__(self, line: ReportLine, refusal: AppendRefused) -> None:
        super().__init__(str(refusal))
        self.line, self.refusal = line, refusal


Outcome = tuple[ReportLine, Appended | AppendRefused]


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


def too_many_lines() -> InvalidInput:
    """The 422 for a batch past MAX_LINES lines."""
    return InvalidInput(f"a batch holds at most {MAX_LINES} lines, blank ones included; split it")


async def read_lines(request: Request[Any, Any, Any]) -> bytes:
    """The body, refused as soon as it holds more than MAX_LINES lines.

    Blank lines count: otherwise a body of nothing but newlines is split into
    millions of empty lines before anything is refused. The rest is left unread.
    """
    chunks, newlines = [], 0
    async for chunk in request.stream():  # which keeps the route's body size limit
        newlines += chunk.count(b"\n")
        if newlines > MAX_LINES:
            raise too_many_lines()
        chunks.append(chunk)
    return b"".join(chunks)


def _chunks(body: bytes) -> Iterator[list[tuple[int, bytes]]]:
    lines = numbered_lines(body)
    while chunk := list(islice(lines, CHUNK_LINES)):
        yield chunk


async def _append(conn: "Connection", lines: list[ReportLine]) -> list[Outcome]:
    outcomes = await append_many(conn, [line.request for line in lines])
    return list(zip(lines, outcomes, strict=True))


async def append_batch(conn: "Connection", body: bytes, parser: Parser) -> list[Outcome]:
    """Parse and append every line in one transaction, or none of them.

    Lines are parsed a chunk at a time while the previous chunk is being appended:
    the database and this process work at once instead of in turn. Once a line is
    bad or refused nothing more is sent, but every line is still read, so that the
    answer names every bad line.
    """
    outcomes: list[Outcome] = []
    writing: asyncio.Task[list[Outcome]] | None = None
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


def _any_refused(outcomes: list[Outcome]) -> bool:
    return any(isinstance(outcome, AppendRefused) for _, outcome in outcomes)


def _refuse_any(outcomes: list[Outcome], parser: Parser) -> None:
    """Roll the batch back (by raising) if a line is bad or the log refused one."""
    if parser.errors:
        raise _refuse(parser.errors)
    if not outcomes:
        raise InvalidInput("the batch holds no reports")
    for line, outcome in outcomes:
        if isinstance(outcome, AppendRefused):
            raise BatchRefused(line, outcome)


def _conflict(refused: BatchRefused, idempotency_key: str | None) -> Exception:
    line, refusal = refused.line, refused.refusal
    if isinstance(refusal, EventIdReused) and idempotency_key is not None:
        return InvalidInput(
            f"line {line.line}: this Idempotency-Key was already used with a different batch"
        )
    return Conflict(
        f"line {line.line}: incident {line.incident_id} already exists with other content "
        "(nothing was appended)"
    )


def batch_route(max_body_bytes: int) -> HTTPRouteHandler:
    """The batch handler, with its own body limit (larger than single reports')."""

    @post(
        "/v1/incidents:batch",
        status_code=201,
        tags=["incidents"],
        summary="Report many incidents (NDJSON, all or nothing)",
        request_max_body_size=max_body_bytes,
        opt=route_meta(
            problems=(400, 401, 403, 409, 413, 415, 422), ndjson_body=True, scope="write"
        ),
    )
    async def report_batch(
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        metrics: NamedDependency[Metrics],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchResult]:
        """One report per line; 201 with every id and position, or 422 naming the first bad line."""
        _require_ndjson(request)
        body = await read_lines(request)
        meta = metadata(request, None)
        parser = Parser(
            idempotency_key, lambda key: msgspec.structs.replace(meta, idempotency_key=key)
        )
        try:
            async with pool.acquire() as conn:
                appended = await append_batch(conn, body, parser)
        except BatchRefused as refused:
            raise _conflict(refused, idempotency_key) from None
        result = _result(appended)
        metrics.count_appended(sum(not item.duplicate for item in result.items))
        return Response(result, status_code=201, headers={POSITION: str(result.last_position)})

    return report_batch


def _result(appended: list[Outcome]) -> BatchResult:
    items = [
        BatchItem(line.line, line.incident_id, outcome.positions[-1], outcome.duplicate)
        for line, outcome in appended
        if isinstance(outcome, Appended)
    ]
    return BatchResult(items, max(item.position for item in items))


def _require_ndjson(request: Request[Any, Any, Any]) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NDJSON:
        raise UnsupportedMediaType(
            "send one JSON report per line with Content-Type: application/x-ndjson"
        )
