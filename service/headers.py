"""Conditional-request and log-position headers."""

import re

from service.problems import Problem

POSITION = "Legation-Position"
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def etag(version: int) -> str:
    """The strong ETag of a resource at `version`."""
    return f'"{version}"'


def if_match_version(header: str | None) -> int | None:
    """The version an If-Match header names (None when absent or `*`)."""
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header)
    if match is None:
        raise Problem('If-Match must be an ETag such as "3", as returned in the ETag header')
    return int(match[1])


def none_match(header: str | None, current: str) -> bool:
    """Whether If-None-Match names the current ETag (answer 304)."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or current in tags
