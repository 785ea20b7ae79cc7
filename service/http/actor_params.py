"""Actor codes a request names: the canonical code, or the 422 naming the parameter."""

from collections.abc import Iterable

from service.http.problems import FieldError, InvalidInput
from service.incidents.actors import NOT_AN_ACTOR, NotAnActor, canonical_actor

# Path and query parameters name the codes they take; the log's filters, which
# take several, quote the one that is wrong instead.
TAKES = NOT_AN_ACTOR


def not_an_actor(error: NotAnActor, field: str, *, quoted: bool = False) -> FieldError:
    """The field error for a code in `field` that names no actor."""
    return FieldError(field, str(error) if quoted else TAKES)


def actor_param(value: str, field: str) -> str:
    """The canonical code `field` holds; a 422 naming `field` otherwise."""
    try:
        return canonical_actor(value)
    except NotAnActor as exc:
        error = not_an_actor(exc, field)
        raise InvalidInput(f"{field}: {error.message}", errors=[error]) from None


def actor_params(values: Iterable[str], field: str) -> tuple[list[str], list[FieldError]]:
    """The canonical codes of `values`, and an error quoting each that names no actor."""
    codes: list[str] = []
    errors: list[FieldError] = []
    for value in values:
        try:
            codes.append(canonical_actor(value))
        except NotAnActor as exc:
            errors.append(not_an_actor(exc, field, quoted=True))
    return codes, errors
