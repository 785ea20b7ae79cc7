"""Reading one's own writes: `min_position` on every read of the read models."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Final

import asyncpg
from litestar.params import QueryParameter

from service.http.problems import FieldError, InvalidInput, Unavailable
from service.log.store import head_position
from service.projections.projector import Projector

if TYPE_CHECKING:
    from service.log.doorbell import Bell

# How often a read waiting for a standby's replay reads the head, rings or not.
HEAD_INTERVAL: Final = 0.05

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
LogMinPosition = Annotated[
    int | None,
    QueryParameter(
        name="min_position",
        ge=0,
        le=2**62,
        description="Answer only once the log includes this position: at once where writes "
        "are taken (a position beyond the log's head is a 422); on a read-only server, once "
        "its standby has replayed it (waits up to LEGATION_READ_WAIT_SECONDS, then 503).",
    ),
]


class ReadModels:
    """Where the read models are, and waiting for them to include a position."""

    def __init__(
        self,
        projector: Projector,
        pool: asyncpg.Pool[Any],
        wait_seconds: float,
        *,
        standby: bool = False,
        bell: Bell | None = None,
    ) -> None:
        self._projector, self.pool, self._wait = projector, pool, wait_seconds
        # On a standby a position past the replayed head was written on the primary
        # and is on its way: it is waited for like any other, never refused at once.
        self._standby, self._bell = standby, bell

    @property
    def position(self) -> int:
        """The last log position the read models include."""
        return self._projector.position

    async def advanced(self, within: float) -> bool:
        """Wait for the read models to move on, at most `within` seconds; whether they did."""
        return await self._projector.advanced(within)

    async def reach(self, min_position: int | None, **more: int | None) -> None:
        """Return once the read models include `min_position` (and the positions in `more`,
        by parameter name); 422 naming the parameter beyond the log's head, 503 after the
        wait."""
        wanted = {"min_position": min_position, **more}
        position = max((value for value in wanted.values() if value is not None), default=None)
        if position is None or position <= self._projector.position:
            return
        if not self._standby:
            await self._within_head(wanted)
        if not await self._projector.caught_up(position, self._wait):
            raise Unavailable(
                f"the read models have not reached position {position} yet; retry shortly",
                headers={"Retry-After": "1"},
            )

    async def reach_log(self, min_position: int | None) -> None:
        """Return once the log (not the read models) includes `min_position`: on a primary
        at once, 422 beyond its head; on a standby once replayed, 503 after the wait."""
        if min_position is None:
            return
        if not self._standby:
            await self._within_head({"min_position": min_position})
        elif not await self._replayed(min_position):
            raise Unavailable(
                f"this standby has not replayed position {min_position} yet; retry shortly",
                headers={"Retry-After": "1"},
            )

    async def _replayed(self, position: int) -> bool:
        deadline = time.monotonic() + self._wait
        while True:
            async with self.pool.acquire() as conn:
                if await head_position(conn) >= position:
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._bell is not None:
                await self._bell.wait(min(left, HEAD_INTERVAL))

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
