"""The NUL character, which PostgreSQL's text and jsonb refuse: found in JSON and named."""

from typing import Any, Final

import msgspec

from service.incidents.errors import FieldError, Invalid

# JSON can only spell NUL as this escape (a raw 0x00 byte in a string is malformed JSON),
# so a body without it needs no further look.
_ESCAPED: Final = b"\\u0000"
_NUL: Final = "\x00"
MESSAGE: Final = "must not contain the NUL character (\\u0000)"


def nul_error(raw: bytes) -> FieldError | None:
    """The first place (in document order) where the JSON `raw` holds a NUL, if any."""
    if _ESCAPED not in raw:
        return None
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None  # malformed: the decoding that follows says so
    return _find(value)


def refuse_nul(raw: bytes) -> None:
    """Raise Invalid naming the field when the JSON `raw` holds a NUL."""
    error = nul_error(raw)
    if error is not None:
        raise Invalid(f"{error.field}: {error.message}", errors=[error])


def _find(value: Any) -> FieldError | None:
    # Depth first without recursion (the decoder allows deeper nesting than Python's stack).
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            if _NUL in item:
                return FieldError(field=path or "body", message=MESSAGE)
        elif isinstance(item, dict):
            if any(_NUL in key for key in item):
                return FieldError(field=path or "body", message=f"has a key that {MESSAGE}")
            pending += [(item[key], f"{path}.{key}" if path else key) for key in reversed(item)]
        elif isinstance(item, list):
            pending += [(item[n], f"{path}[{n}]") for n in reversed(range(len(item)))]
    return None
