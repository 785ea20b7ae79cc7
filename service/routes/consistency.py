"""Reading one's own writes: `min_position` on every read of the read models."""

from typing import Annotated

from litestar.params import QueryParameter

from service.problems import Unavailable
from service.runtime import Runtime

MinPosition = Annotated[
    int | None,
    QueryParameter(
        name="min_position",
        ge=0,
        le=2**62,
        description="Answer only once the read models include this log position "
        "(waits up to LEGATION_READ_WAIT_SECONDS, 5 s by default, then 503 with Retry-After).",
    ),
]


async def await_position(runtime: Runtime, min_position: int | None) -> None:
    """Return once the read models include `min_position`; 503 after the configured wait."""
    if min_position is None:
        return
    if not await runtime.projector.caught_up(min_position, runtime.settings.read_wait_seconds):
        raise Unavailable(
            f"the read models have not reached position {min_position} yet; retry shortly",
            headers={"Retry-After": "1"},
        )
