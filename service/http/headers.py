"""Conditional-request and log-position headers."""

import re

from service.http.problems import FieldError, InvalidInput

POSITION = "Legation-Position"
_ENTITY_TAG = re.compile(r'^(W/)?"([^"]*)"$')
# What If-Match may hold (`*` or a list of entity tags), for the OpenAPI document.
IF_MATCH = r'^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$'


def etag(version: int) -> str:
    """The strong ETag of a resource at `version`."""
    return f'"{version}"'


def if_match_versions(header: str | None) -> frozenset[int] | None:
    """The versions If-Match accepts (None when absent or `*`).

    RFC 9110 compares If-Match strongly: a weak tag never matches, so a header
    of weak tags only accepts no version at all (412).
    """
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        match = _ENTITY_TAG.match(tag.strip())
        if match is None:
            message = 'must list ETags such as "3", as returned in the ETag header'
            error = FieldError(field="If-Match", message=message)
            raise InvalidInput(f"If-Match {message}", errors=[error])
        weak, opaque = match.groups()
        if not weak and opaque.isdigit() and len(opaque) <= 9:
            versions.add(int(opaque))
    return frozenset(versions)


def none_match(header: str | None, current: str) -> bool:
    """Whether If-None-Match names the current ETag (answer 304)."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or current in tags
