"""What the app holds while it runs, each given to the routes as a named dependency.

A route names what it uses (`pool: NamedDependency[Pool]`, `appends: ...`), so its
signature says which resources it touches. `create_app` puts the ones it can make
at once in the app's state; the lifespan adds those that need the database.

The hot routes name one each: Litestar resolves two or more dependencies of a
request in a task group of their own, which cost POST /v1/incidents ~15 % (measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import asyncpg
from litestar.datastructures import State
from litestar.di import Provide

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]
else:  # Litestar reads route signatures at run time, where asyncpg's Pool takes no [Any]
    Pool = asyncpg.Pool

RESOURCES: Final = (
    "settings",
    "metrics",
    "answers",
    "streams",
    "pool",
    "appends",
    "read_models",
    "fanout",
    "deliverer",
    "standing_changes",
    "migration_heads",
)


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return state[name]

    return Provide(provide, sync_to_thread=False)


DEPENDENCIES: Final = {name: _from_state(name) for name in RESOURCES}
