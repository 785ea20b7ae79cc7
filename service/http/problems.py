"""RFC 9457 problem details: the one shape of every error response."""

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

# FieldError is the domain's; http modules name it from here, beside the problems.
from service.incidents.errors import FieldError as FieldError
from service.incidents.errors import field_error

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("legation.http")


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    current_version: int | None = None
    acceptable: list[str] | None = None  # the media types a 406 could have answered


class Problem(Exception):
    """An error answered as problem details; subclasses name the fact."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        current_version: int | None = None,
        acceptable: list[str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail, self.errors, self.headers = detail, errors, headers or {}
        self.current_version, self.acceptable = current_version, acceptable

    def body(self) -> ProblemDetails:
        """The problem details this error is answered with."""
        return ProblemDetails(
            type=f"urn:legation:problem:{self.slug}",
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
            current_version=self.current_version,
            acceptable=self.acceptable,
        )


class InvalidInput(Problem):
    """The request is well-formed but its content breaks the contract."""

    status, slug, title = 422, "validation", "The request is not valid"


class MalformedJson(Problem):
    """The body is not JSON (or NDJSON) at all."""

    status, slug, title = 400, "malformed-json", "The body is not valid JSON"


class NotFound(Problem):
    """The resource does not exist."""

    status, slug, title = 404, "not-found", "Not found"


class NotAcceptable(Problem):
    """No media type the route answers with is acceptable to the client (Accept)."""

    status, slug, title = 406, "not-acceptable", "Not acceptable"


class Conflict(Problem):
    """The request conflicts with what the log already holds."""

    status, slug, title = 409, "conflict", "Conflict with the current state"


class PreconditionFailed(Problem):
    """If-Match named a version that is no longer current."""

    status, slug, title = 412, "precondition-failed", "The incident has changed"


class Unavailable(Problem):
    """The service cannot answer now; Retry-After says when to try again."""

    status, slug, title = 503, "unavailable", "Service unavailable"


def invalid(exc: msgspec.ValidationError, prefix: str = "") -> InvalidInput:
    """A 422 naming the field msgspec rejected."""
    error = field_error(exc, prefix)
    return InvalidInput(f"{error.field}: {error.message}", errors=[error])


def problem_response(problem: Problem) -> Response[ProblemDetails]:
    """The response for a Problem."""
    return Response(
        problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _on_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[ProblemDetails]:
    return problem_response(exc)


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ProblemDetails]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        FieldError(field=str(item.get("key", "request")), message=str(item.get("message", "")))
        for item in extra
        if isinstance(item, dict)
    ]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    return problem_response(InvalidInput(detail, errors=errors))


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetails]:
    problem = Problem(str(exc.detail), headers=dict(exc.headers or {}))
    problem.status, problem.title = exc.status_code, _title(exc.status_code)
    problem.slug = problem.title.lower().replace(" ", "-")
    return problem_response(problem)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# The database went away (restart, failover, pg_terminate_backend, too many connections):
# the request may be retried, with its Idempotency-Key if it wrote.
DATABASE_OUTAGES = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    OSError,
)


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_OUTAGES):
        return True
    # asyncpg reports a connection closed under a query as an InterfaceError, and one
    # whose server ended it while it sat idle in the pool (the FATAL read, the end of the
    # socket not yet) as an InternalClientError before sending anything (asyncpg#1069).
    message = str(exc)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return "another operation" in message
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in message


def _on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    if _is_outage(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        detail = "The database is not reachable at the moment; retry shortly."
        return problem_response(Unavailable(detail, headers={"Retry-After": "1"}))
    # Never echo the exception: it may carry SQL or internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = Problem("The server failed to answer this request; it has been logged.")
    problem.status, problem.slug, problem.title = 500, "internal", "Internal server error"
    return problem_response(problem)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Problem: _on_problem,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    HTTP_500_INTERNAL_SERVER_ERROR: _on_crash,
    Exception: _on_crash,
}
