"""POST /v1/incidents:batch: many reports as NDJSON, appended all or nothing."""

from typing import Any, Final
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler

from service.batches import MAX_LINES, ParsedLine, ReportLine, numbered_lines, parse_line
from service.batches import report_line as to_report_line
from service.headers import POSITION
from service.problems import Conflict, FieldError, InvalidInput
from service.routes.bodies import UnsupportedMediaType
from service.routes.incidents import IdempotencyKey, metadata
from service.runtime import Runtime
from service.store import Appended, AppendRefused, EventIdReused, append_many

NDJSON: Final = ("application/x-ndjson", "application/jsonl", "application/ndjson")
_MAX_ERRORS = 100


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
    first = errors[0]
    detail = f"line {first.line}: {first.field}: {first.message} (nothing was appended)"
    return InvalidInput(detail, errors=errors[:_MAX_ERRORS])


def parse_batch(body: bytes, idempotency_key: str | None, meta_of: Any) -> list[ReportLine]:
    """Every line as its append; 422 naming the first bad line if any is bad."""
    errors: list[FieldError] = []
    parsed: list[ParsedLine] = []
    for number, line in numbered_lines(body):
        outcome = parse_line(number, line)
        if isinstance(outcome, list):
            errors += outcome
        else:
            parsed.append(outcome)
    if len(parsed) + len(errors) > MAX_LINES:
        raise InvalidInput(f"a batch holds at most {MAX_LINES} reports; split it")
    lines = [_line(item, idempotency_key, meta_of, errors) for item in parsed]
    if errors:
        raise _refuse(sorted(errors, key=lambda error: error.line or 0))
    ready = [line for line in lines if line is not None]
    if not ready:
        raise InvalidInput("the batch holds no reports")
    _refuse_repeated_ids(ready)
    return ready


def _line(
    parsed: ParsedLine, key: str | None, meta_of: Any, errors: list[FieldError]
) -> ReportLine | None:
    line_key = f"{key}#{parsed.line}" if key else None
    outcome = to_report_line(parsed, meta_of(line_key))
    if isinstance(outcome, list):
        errors += outcome
        return None
    return outcome


def _refuse_repeated_ids(lines: list[ReportLine]) -> None:
    seen: dict[UUID, int] = {}
    for line in lines:
        if line.incident_id in seen:
            message = f"repeats the incident id of line {seen[line.incident_id]}"
            raise _refuse([FieldError(field="id", message=message, line=line.line)])
        seen[line.incident_id] = line.line


class BatchRefused(Exception):
    """A line's append was refused, so the whole batch is rolled back."""

    def __init__(self, line: ReportLine, refusal: AppendRefused) -> None:
        super().__init__(str(refusal))
        self.line, self.refusal = line, refusal


async def append_batch(runtime: Runtime, lines: list[ReportLine]) -> list[Appended]:
    """Append every line in one transaction, or none of them."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        outcomes = await append_many(conn, [line.request for line in lines])
        for line, outcome in zip(lines, outcomes, strict=True):
            if isinstance(outcome, AppendRefused):
                raise BatchRefused(line, outcome)
    return [outcome for outcome in outcomes if isinstance(outcome, Appended)]


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
        opt={
            "problems": (400, 401, 403, 409, 413, 415, 422),
            "ndjson_body": True,
            "scope": "write",
        },
    )
    async def report_batch(
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchResult]:
        """One report per line; 201 with every id and position, or 422 naming the first bad line."""
        _require_ndjson(request)
        body = await request.body()
        meta = metadata(request, None)
        lines = parse_batch(
            body, idempotency_key, lambda key: msgspec.structs.replace(meta, idempotency_key=key)
        )
        try:
            appended = await append_batch(runtime, lines)
        except BatchRefused as refused:
            raise _conflict(refused, idempotency_key) from None
        runtime.metrics.count_appended(sum(not outcome.duplicate for outcome in appended))
        items = [
            BatchItem(line.line, line.incident_id, outcome.positions[-1], outcome.duplicate)
            for line, outcome in zip(lines, appended, strict=True)
        ]
        last = max(item.position for item in items)
        return Response(BatchResult(items, last), status_code=201, headers={POSITION: str(last)})

    return report_batch


def _require_ndjson(request: Request[Any, Any, Any]) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NDJSON:
        raise UnsupportedMediaType(
            "send one JSON report per line with Content-Type: application/x-ndjson"
        )
