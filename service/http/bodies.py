"""Request bodies: strict msgspec decoding with errors that name the field."""

from typing import Any, TypeVar

import msgspec
from litestar import Request

from service.http.problems import FieldError, InvalidInput, MalformedJson, Problem, invalid
from service.incidents.nul import refuse_nul

T = TypeVar("T")


class UnsupportedMediaType(Problem):
    """The body is not in a media type the route reads."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


def require_json(request: Request[Any, Any, Any]) -> None:
    """Refuse bodies that say they are not JSON."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as JSON with Content-Type: application/json, not {media_type}"
        )


async def json_body(request: Request[Any, Any, Any], decoder: msgspec.json.Decoder[T]) -> T:
    """The body decoded strictly: 400 when it is not JSON, 422 naming the bad field."""
    require_json(request)
    raw = await request.body()
    refuse_nul(raw)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedJson(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep() from None


def too_deep() -> InvalidInput:
    """The 422 for JSON nested deeper than the decoder follows."""
    error = FieldError("body", "is nested too deeply")
    return InvalidInput("body: the JSON is nested too deeply", errors=[error])
