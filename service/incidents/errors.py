"""What the incident domain refuses, as facts; service/http answers each with a problem."""

import re
from uuid import UUID

import msgspec


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    """One invalid field: its path in the body or query, what is wrong, and its NDJSON line."""

    field: str
    message: str
    line: int | None = None


class Invalid(Exception):
    """The content breaks a rule; `errors` names every field at fault."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.errors = detail, errors


class IncidentNotFound(Exception):
    """No incident has this id (its stream is empty)."""

    def __init__(self, incident_id: UUID) -> None:
        super().__init__(f"no incident {incident_id}")
        self.incident_id = incident_id


class IncidentExists(Exception):
    """A report names an incident the log already holds (`other_content`: not this one)."""

    def __init__(self, incident_id: UUID, other_content: bool = False) -> None:
        differs = " with other content" if other_content else ""
        super().__init__(f"incident {incident_id} already exists{differs}")
        self.incident_id, self.other_content = incident_id, other_content


class IdempotencyKeyReused(Exception):
    """An idempotency key already stands for another request."""

    def __init__(self, incident_id: UUID) -> None:
        super().__init__(f"the idempotency key was used for another request on {incident_id}")
        self.incident_id = incident_id


class StreamChanged(Exception):
    """The incident is not at a version the command expected (a stale If-Match)."""

    def __init__(self, expected: frozenset[int], actual: int) -> None:
        super().__init__(f"expected a version in {sorted(expected)}, the incident is at {actual}")
        self.expected, self.actual = expected, actual


class IncidentAlreadyRetracted(Exception):
    """The incident was retracted; it can no longer change."""

    def __init__(self, incident_id: UUID, action: str) -> None:
        super().__init__(f"incident {incident_id} is retracted and cannot be {action}")
        self.incident_id, self.action = incident_id, action


class KeptChanging(Exception):
    """Other writers changed the incident on every attempt to apply a command."""

    def __init__(self, incident_id: UUID) -> None:
        super().__init__("the incident kept changing while the request was applied; retry")
        self.incident_id = incident_id


_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(missing required|contains unknown) field `(?P<name>[^`]+)`")


def field_error(exc: msgspec.ValidationError, prefix: str = "") -> FieldError:
    """msgspec's message turned into a field path ('sources[0].outlet') and a message."""
    match = _PATH.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, path = match["message"], (match["path"] or "").lstrip(".")
    named = _NAMED.search(message)
    if named:
        path = f"{path}.{named['name']}" if path else named["name"]
        message = "is required" if named[1] == "missing required" else "is not a known field"
    field = ".".join(part for part in (prefix, path) if part) or "body"
    return FieldError(field=field.replace(".[", "["), message=message)


def invalid(exc: msgspec.ValidationError, prefix: str = "") -> Invalid:
    """The field msgspec rejected, as Invalid."""
    error = field_error(exc, prefix)
    return Invalid(f"{error.field}: {error.message}", errors=[error])
