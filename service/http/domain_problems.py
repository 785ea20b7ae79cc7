"""The domain's refusals (service/incidents/errors.py, a subscription cap) as problem details."""

from collections.abc import Callable
from typing import Any, TypeVar

from litestar import Request, Response

from service.http.problems import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Problem,
    ProblemDetails,
    problem_response,
)
from service.incidents.errors import (
    IdempotencyKeyReused,
    IncidentAlreadyRetracted,
    IncidentExists,
    IncidentNotFound,
    Invalid,
    KeptChanging,
    StreamChanged,
)
from service.subscribers.subscriptions import SubscriptionsFull

E = TypeVar("E", bound=Exception)
Handler = Callable[[Request[Any, Any, Any], Any], Response[ProblemDetails]]


class SubscriptionLimit(Problem):
    """The key already holds as many subscriptions as it may."""

    status, slug, title = 409, "subscription-limit", "The key holds its maximum of subscriptions"


class Retracted(Conflict):
    """The incident was retracted; it can no longer change."""

    slug, title = "retracted", "The incident is retracted"


def _invalid(exc: Invalid) -> Problem:
    return InvalidInput(exc.detail, errors=exc.errors)


def _stale(exc: StreamChanged) -> Problem:
    named = ", ".join(f'"{version}"' for version in sorted(exc.expected)) or "no strong ETag"
    return PreconditionFailed(
        f"If-Match named {named}; the incident is at version {exc.actual}",
        current_version=exc.actual,
    )


def _key_reused(_: IdempotencyKeyReused) -> Problem:
    return InvalidInput("this Idempotency-Key was already used with a different request")


def _answer(problem: Callable[[E], Problem]) -> Handler:
    def handle(_: Request[Any, Any, Any], exc: E) -> Response[ProblemDetails]:
        return problem_response(problem(exc))

    return handle


DOMAIN_PROBLEMS: dict[type[Exception] | int, Handler] = {
    Invalid: _answer(_invalid),
    IncidentNotFound: _answer(lambda exc: NotFound(str(exc))),
    IncidentExists: _answer(lambda exc: Conflict(str(exc))),
    IdempotencyKeyReused: _answer(_key_reused),
    StreamChanged: _answer(_stale),
    IncidentAlreadyRetracted: _answer(lambda exc: Retracted(str(exc))),
    KeptChanging: _answer(lambda exc: Conflict(str(exc))),
    SubscriptionsFull: _answer(lambda exc: SubscriptionLimit(str(exc))),
}
