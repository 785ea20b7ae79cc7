"""What did we say then: `known_at` as a log position or an instant, `Accept-Datetime`,
and the RFC 7089 memento headers that let a newsroom cite an answer that never changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Request
from litestar.params import HeaderParameter, QueryParameter

from service.http.problems import FieldError, InvalidInput

MAX_POSITION: Final = 2**62
KnownAt = Annotated[
    str | None,
    QueryParameter(
        name="known_at",
        min_length=1,
        max_length=64,
        description="Count only what the log held at this position, or at this RFC 3339 "
        "instant (the last position recorded by then; e.g. 2022-04-20T12:00:00Z): "
        "corrections after it not yet applied. Waits like min_position when the read "
        "models are behind it; a position beyond the log's head or a future instant is a 422.",
    ),
]
AcceptDatetime = Annotated[
    str | None,
    HeaderParameter(
        name="Accept-Datetime",
        max_length=64,
        description="RFC 7089: the same as known_at with this HTTP-date "
        "(e.g. Wed, 20 Apr 2022 12:00:00 GMT); known_at wins when both are given.",
    ),
]
Known = int | datetime | None  # a position, an instant, or the live log


def known(known_at: str | None, accept_datetime: str | None) -> Known:
    """What the request asks to have been known; a 422 naming the one at fault."""
    if known_at is not None:
        return _known_at(known_at.strip())
    if accept_datetime is not None:
        return _accept_datetime(accept_datetime.strip())
    return None


def _known_at(text: str) -> int | datetime:
    if text.isascii() and text.isdigit():
        if len(text) > 19 or int(text) > MAX_POSITION:
            raise _invalid("known_at", f"a position is at most {MAX_POSITION}")
        return int(text)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        message = "is neither a log position nor an RFC 3339 instant (2022-04-20T12:00:00Z)"
        raise _invalid("known_at", message) from None
    if instant.tzinfo is None:
        raise _invalid("known_at", "an instant needs its offset (Z or +hh:mm)")
    return _past("known_at", instant)


def _accept_datetime(text: str) -> datetime:
    try:
        instant = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        message = "is not an HTTP-date (Wed, 20 Apr 2022 12:00:00 GMT)"
        raise _invalid("Accept-Datetime", message) from None
    return _past("Accept-Datetime", instant.replace(tzinfo=instant.tzinfo or UTC))


def _past(field: str, instant: datetime) -> datetime:
    if instant > datetime.now(UTC):
        raise _invalid(field, "is in the future: the log cannot say yet what it will hold")
    return instant


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[FieldError(field, message)])


def memento_datetime(recorded: datetime) -> dict[str, str]:
    """The `Memento-Datetime` of an answer as known at a position recorded then."""
    return {"Memento-Datetime": format_datetime(recorded.astimezone(UTC), usegmt=True)}


def memento_link(request: Request[Any, Any, Any], position: int) -> str:
    """`<this URL, as known at position>; rel="memento"`: a URL whose answer never changes."""
    dropped = {"known_at", "min_position", "cursor"}
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in dropped]
    query.append(("known_at", str(position)))
    return f'<{request.url.path}?{urlencode(query)}>; rel="memento"'
