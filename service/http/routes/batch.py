"""POST /v1/incidents:batch: many reports as NDJSON, appended all or nothing."""

from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler

from service.http.bodies import UnsupportedMediaType
from service.http.headers import POSITION
from service.http.metrics import Metrics
from service.http.problems import Conflict, InvalidInput
from service.http.resources import Pool
from service.http.route_meta import route_meta
from service.http.routes.incidents import IdempotencyKey, metadata
from service.incidents.batch_handler import (
    BatchRefused,
    LineOutcome,
    Parser,
    append_batch,
    too_many_lines,
)
from service.incidents.batches import MAX_LINES
from service.log.store import Appended, EventIdReused

NDJSON: Final = ("application/x-ndjson", "application/jsonl", "application/ndjson")
if TYPE_CHECKING:
    pass


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
        operation_id="reportIncidentBatch",
        request_max_body_size=max_body_bytes,
        opt=route_meta(
            problems=(400, 401, 403, 409, 413, 415, 422),
            ndjson_body=True,
            scope="write",
            headers=("Legation-Position",),
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


def _result(appended: list[LineOutcome]) -> BatchResult:
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
