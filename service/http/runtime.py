"""What request handlers share: settings, the pool and the group committer."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.datastructures import State

from service.config import Settings
from service.log.doorbell import Doorbell
from service.log.group_commit import GroupCommit
from service.ops.metrics import Metrics
from service.projections.answer_cache import AnswerCache
from service.projections.projector import Projector
from service.subscribers.fanout import Fanout
from service.subscribers.webhooks import Deliverer


class Runtime:
    """The process-wide resources a running app holds.

    A plain class on purpose: Litestar passes it to handlers as an opaque value
    instead of inspecting and converting fields as it would for a dataclass.
    """

    __slots__ = (
        "appends",
        "cache",
        "deliverer",
        "doorbell",
        "fanout",
        "metrics",
        "migration_heads",
        "pool",
        "projector",
        "settings",
    )

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool[Any],
        appends: GroupCommit,
        doorbell: Doorbell,
        projector: Projector,
        fanout: Fanout,
        migration_heads: frozenset[str],
        metrics: Metrics,
        deliverer: Deliverer,
        cache: AnswerCache,
    ) -> None:
        self.settings, self.pool, self.appends = settings, pool, appends
        self.doorbell, self.projector, self.fanout = doorbell, projector, fanout
        self.migration_heads = migration_heads
        self.cache = cache  # the same one the edge keeps answers in
        self.metrics = metrics
        self.deliverer = deliverer


def provide_runtime(state: State) -> Runtime:
    """Dependency: the app's Runtime (set by the lifespan)."""
    runtime: Runtime = state.runtime
    return runtime
