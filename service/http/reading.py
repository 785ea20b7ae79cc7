"""How the standings routes read: at a log position (and date), remembered, conditionally.

Every standings route takes its reading parameters through one dependency,
`READ` (or `READ_PAGE` for lists, whose `limit` and `cursor` come between them
in the OpenAPI document), and answers with `Reading.answer`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar, cast

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import HeaderParameter, QueryParameter

from service.http import csv_tables
from service.http.consistency import MinPosition, ReadModels
from service.http.headers import POSITION, none_match
from service.http.mementos import (
    AcceptDatetime,
    Known,
    KnownAt,
    known,
    memento_datetime,
    memento_link,
)
from service.http.paging import DEFAULT_LIMIT, CursorParam, Limit, next_link
from service.http.representations import CSV, JSON, chosen
from service.log.store import position_at, recorded_by
from service.projections.answer_cache import AnswerCache, Cached, cached
from service.projections.standings import At

if TYPE_CHECKING:
    from service.log.store import Connection

T = TypeVar("T")
_encoder = msgspec.json.Encoder()

AsOf = Annotated[
    date | None,
    QueryParameter(name="as_of", description="Count only incidents that occurred by this date"),
]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=1024)]


class Pinned(Protocol):
    """A cursor: the position its first page was read at."""

    @property
    def position(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """What a standings request reads at, and the copy the client holds."""

    request: Request[Any, Any, Any]
    read_models: ReadModels
    answers: AnswerCache
    as_of: date | None
    known_at: Known  # a position, an instant (known_at or Accept-Datetime), or live
    min_position: int | None
    if_none_match: str | None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    async def at(self, after: Pinned | None = None, side: str | None = None) -> At:
        """The position (and date) to answer at, once the read models have reached it.

        A page after the first is read at its first page's position (the cursor holds
        it), so paging on while the log grows neither skips nor repeats items.
        """
        known_at, min_position = await self._position_known(), self.min_position
        if known_at is not None:
            await self.read_models.reach(min_position, known_at=known_at)
        elif after is not None:
            known_at = after.position
            await self.read_models.reach(min_position, cursor=known_at)
        else:
            await self.read_models.reach(min_position)
        position = known_at if known_at is not None else self.read_models.position
        return At(position, self.as_of, side)

    async def _position_known(self) -> int | None:
        if not isinstance(self.known_at, datetime):
            return self.known_at
        async with self.read_models.pool.acquire() as conn:
            return await position_at(conn, self.known_at)

    async def answer(
        self,
        key: Hashable,
        compute: Callable[[Connection, At], Awaitable[tuple[T, str | None]]],
        after: Pinned | None = None,
        side: str | None = None,
    ) -> Response[T]:
        """The answer for `key`, from memory when it was computed before at the same `at`.

        `compute` gives the answer and the cursor of the page after it (None: none);
        `side` is the bloc whose members count as one actor (`members=true`).
        """
        # The wait for a position happens here, not in the dependency: Litestar resolves
        # dependencies before it checks the route's own parameters, and a malformed code
        # or cursor is a 422 at once, never after waiting for the read models.
        at = await self.at(after, side)
        csv = chosen(self.request.scope) == "csv"

        async def make() -> Cached:
            async with self.read_models.pool.acquire() as conn:
                body, following = await compute(conn, at)
            if csv:
                assert isinstance(body, msgspec.Struct)  # every list is a Struct with `items`
                return cached(csv_tables.encode(body), following)
            return cached(_encoder.encode(body), following)

        entry, at = await self._kept((key, "csv") if csv else key, at, make)
        # Where a route offers CSV, one URL has two answers, chosen by Accept.
        vary = {"Vary": "Accept"} if chosen(self.request.scope) is not None else None
        return cast(Response[T], await self._respond(entry, at, CSV if csv else JSON, vary))

    async def rendered(
        self,
        key: Hashable,
        render: Callable[[At], Awaitable[bytes]],
        media_type: str,
        side: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[bytes]:
        """Like `answer`, for a body `render` makes whole (it reads the pool itself, so
        that no connection is held while it renders) in `media_type`, with `headers`."""
        at = await self.at(None, side)

        async def make() -> Cached:
            return cached(await render(at))

        entry, at = await self._kept((key, media_type), at, make)
        return await self._respond(entry, at, media_type, headers)

    async def _kept(
        self, key: Hashable, at: At, make: Callable[[], Awaitable[Cached]]
    ) -> tuple[Cached, At]:
        """The answer kept for `key` at `at`, made (and kept) when there is none, and
        where it holds: a live read that finds the answer being computed anew gets the
        last one computed (at `min_position` or later), at its own position."""
        pinned = self.known_at is not None or self.cursor is not None
        entry = self.answers.get((key, at))
        if isinstance(entry, Cached):
            return entry, at
        question = (key, at.as_of, at.side)
        if not pinned and (previous := self.answers.previous(question, self.min_position or 0)):
            return previous.answer, At(previous.position, at.as_of, at.side)

        async def made() -> Cached:
            generation = self.answers.generation
            made = await make()
            self.answers.put((key, at), made, None if pinned else at.position, generation)
            return made

        if pinned:
            return await self.answers.once((key, at, pinned), made), at
        refreshed = partial(self.answers.refresh, question, at.position, made)
        return await self.answers.once((key, at, pinned), refreshed), at

    async def _respond(
        self, entry: Cached, at: At, media_type: str, extra: dict[str, str] | None = None
    ) -> Response[bytes]:
        headers = {
            "ETag": entry.etag,
            POSITION: str(at.position),
            **await self._memento(at),
            **(extra or {}),
        }
        if entry.next_cursor is not None:
            following = next_link(self.request, entry.next_cursor)["Link"]
            headers["Link"] = ", ".join(filter(None, (following, headers.get("Link"))))
        if none_match(self.if_none_match, entry.etag):
            return Response(b"", status_code=304, headers=headers)
        return Response(entry.body, media_type=media_type, headers=headers)

    async def _memento(self, at: At) -> dict[str, str]:
        """Memento-Datetime for an answer as known then; a live one links its memento."""
        if self.known_at is None:
            return {} if self.cursor else {"Link": memento_link(self.request, at.position)}
        async with self.read_models.pool.acquire() as conn:
            recorded = await recorded_by(conn, at.position)
        return memento_datetime(recorded) if recorded is not None else {}


# The parameters in the order the routes have always documented them. The resources come
# from the state, not as dependencies: two or more are resolved in a task group per request.
def _read(
    request: Request[Any, Any, Any],
    state: State,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    if_none_match: IfNoneMatch = None,
    accept_datetime: AcceptDatetime = None,
) -> Reading:
    at = known(known_at, accept_datetime)
    return Reading(
        request, state.read_models, state.answers, as_of, at, min_position, if_none_match
    )


def _read_page(
    request: Request[Any, Any, Any],
    state: State,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    min_position: MinPosition = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    if_none_match: IfNoneMatch = None,
    accept_datetime: AcceptDatetime = None,
) -> Reading:
    return Reading(
        request,
        state.read_models,
        state.answers,
        as_of,
        known(known_at, accept_datetime),
        min_position,
        if_none_match,
        limit,
        cursor,
    )


READ = {"reading": Provide(_read, sync_to_thread=False)}
READ_PAGE = {"reading": Provide(_read_page, sync_to_thread=False)}
