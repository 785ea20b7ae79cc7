"""Request ids: taken from X-Request-ID or made up (service/http/edge.py answers and logs them)."""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Final

from litestar.types import Scope

HEADER: Final = b"x-request-id"
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
access_log = logging.getLogger("legation.access")


def request_id(scope: Scope) -> str:
    """The id of the request in `scope` (set by the middleware)."""
    return str(scope.get("legation_request_id", ""))


def given(scope: Scope) -> str | None:
    """The X-Request-ID the client sent, when it is acceptable."""
    for name, value in scope.get("headers", ()):
        if name == HEADER and _ACCEPTABLE.match(value):
            return value.decode()
    return None


_counter = itertools.count(1)
_PROCESS: Final = os.urandom(6).hex()


def new_id() -> str:
    """A request id unique to this process and request."""
    # Unique without a random draw per request: a random process part and a counter.
    return f"{_PROCESS}{next(_counter):012x}"
