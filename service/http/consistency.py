"""Reading one's own writes: `min_position` on every read of the read models."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from litestar.params import QueryParameter

from service.http.problems import FieldError, InvalidInput, Unavailable
from service.log.store import head_position
from service.projections.projector import Projector

MinPosition = Annotated[
    int | None,
    QueryParameter(
        name="min_position",
        ge=0,
        le=2**62,
        description="Answer only once the read models include this log position "
        "(waits up to LEGATION_READ_WAIT_SECONDS, 5 s by default, then 503 with Retry-After; "
        "a position beyond the log's head is a 422 at once).",
    ),
]


# API.md: every read takes min_position. Those of the log itself (an incident, its events,
# a page of the log) already include every answered append, so they wait for nothing.
LoggedPosition = Annotated[
    int | None,
    QueryParameter(
        name="min_position",
        ge=0,
        le=2**62,
        description="Taken by every read: this one reads the log itself, which holds every "
        "answered append, so it answers at once; a position beyond the log's head is a 422.",
    ),
]


class ReadModels:
    """Where the read models are, and waiting for them to include a position."""

    def __init__(self, projector: Projector, pool: asyncpg.Pool[Any], wait_seconds: float) -> None:
        self._projector, self.pool, self._wait = projector, pool, wait_seconds

    @property
    def position(self) -> int:
        """The last log position the read models include."""
        return self._projector.position

    async def reach(self, min_position: int | None, **more: int | None) -> None:
        """Return once the read models include `min_position` (and the positions in `more`,
        by parameter name); 422 naming the parameter beyond the log's head, 503 after the
        wait."""
        wanted = {"min_position": min_position, **more}
        position = max((value for value in wanted.values() if value is not None), default=None)
        if position is None or position <= self._projector.position:
            return
        await self._within_head(wanted)
        if not await self._projector.caught_up(position, self._wait):
            raise Unavailable(
                f"the read models have not reached position {position} yet; retry shortly",
                headers={"Retry-After": "1"},
            )

    async def _within_head(self, wanted: dict[str, int | None]) -> None:
        # A position the log does not hold yet may never come: waiting for it would
        # only hold a request (and a client) for the whole wait.
        await within_head(self.pool, wanted)


async def within_head(pool: asyncpg.Pool[Any], wanted: dict[str, int | None]) -> None:
    """A 422 naming each parameter in `wanted` beyond the log's head."""
    async with pool.acquire() as conn:
        head = await head_position(conn)
    beyond = [
        FieldError(name, f"is beyond the log's head ({head})")
        for name, value in wanted.items()
        if value is not None and value > head
    ]
    if beyond:
        message = "; ".join(f"{error.field}: {error.message}" for error in beyond)
        raise InvalidInput(message, errors=beyond)


async def logged(pool: asyncpg.Pool[Any], min_position: int | None) -> None:
    """`min_position` on a read of the log itself: nothing to wait for, since the log holds
    every append that was answered; beyond its head, the 422 of every read."""
    if min_position is not None:
        await within_head(pool, {"min_position": min_position})
