"""A server of reads on a hot standby: writes are answered with where the primary is.

Refused before the route runs, so a write never reaches a standby that would
answer it with a database error ("cannot execute INSERT in a read-only transaction").
"""

from __future__ import annotations

from typing import Final

from service.http.problems import Problem

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class WritesGoToPrimary(Problem):
    """This server reads from a standby; the primary takes the writes."""

    status, slug, title = 503, "read-only", "This server only reads"


def refusal(method: str, target: str, primary_url: str | None) -> WritesGoToPrimary:
    """The answer to a write of `target` (path and query) on a read-only server."""
    if primary_url is None:
        return WritesGoToPrimary(
            f"this server only reads (LEGATION_READ_ONLY): send {method} {target} to the primary"
        )
    at = primary_url.rstrip("/") + target
    return WritesGoToPrimary(
        f"this server only reads (LEGATION_READ_ONLY): send {method} {target} to the primary, "
        f"{primary_url}",
        # "alternate": the same resource, where it can be written.
        headers={"Link": f'<{at}>; rel="alternate"'},
    )
