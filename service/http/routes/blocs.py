"""GET /v1/blocs and /v1/blocs/{code}: the blocs and their members, with the days they
joined and left (service/incidents/blocs.toml, which names its sources)."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from service.http.paging import CursorParam, Limit, decode_cursor, encode_cursor, next_link
from service.http.problems import NotFound
from service.http.route_meta import route_meta
from service.incidents.actors import actor_name
from service.incidents.blocs import BLOCS, Bloc, bloc


class Member(msgspec.Struct, frozen=True):
    """An actor's membership: it counts on a bloc's side from `joined` through `left`."""

    code: str
    name: str
    joined: date
    left: date | None


class BlocView(msgspec.Struct, frozen=True):
    """A bloc, where its membership data comes from, and every member it has had."""

    code: str
    name: str
    source: str
    members: list[Member]


class BlocList(msgspec.Struct, frozen=True):
    """The blocs, by code; `next_cursor` is null on the last page."""

    items: list[BlocView]
    next_cursor: str | None


class BlocCursor(msgspec.Struct, frozen=True, array_like=True):
    """Where a page of blocs ended: the last one's code."""

    code: str


_cursor_decoder = msgspec.json.Decoder(BlocCursor)


def _view(found: Bloc) -> BlocView:
    members = [Member(m.code, actor_name(m.code), m.joined, m.left) for m in found.members]
    return BlocView(found.code, found.name, found.source, members)


@get(
    "/v1/blocs",
    tags=["standings"],
    summary="The blocs and their members",
    operation_id="listBlocs",
    opt=route_meta(problems=(422,), scope="read", headers=("Link",)),
)
async def list_blocs(
    request: Request[Any, Any, Any], limit: Limit = 50, cursor: CursorParam = None
) -> Response[BlocList]:
    """EU and NATO, each member with the day it joined and the day it left (if it did)."""
    after = decode_cursor(cursor, _cursor_decoder)
    codes = sorted(code for code in BLOCS if after is None or code > after.code)
    page = [_view(BLOCS[code]) for code in codes[:limit]]
    if len(codes) <= limit:
        return Response(BlocList(page, None))
    following = encode_cursor(BlocCursor(page[-1].code))
    return Response(BlocList(page, following), headers=next_link(request, following))


@get(
    "/v1/blocs/{code:str}",
    tags=["standings"],
    summary="A bloc and its members",
    operation_id="getBloc",
    opt=route_meta(problems=(404,), scope="read"),
)
async def read_bloc(code: FromPath[str]) -> BlocView:
    """One bloc (EU or NATO, any case) with every member it has had."""
    found = bloc(code)
    if found is None:
        raise NotFound(f"no bloc {code!r}; the blocs are {', '.join(sorted(BLOCS))}")
    return _view(found)


ROUTES = [list_blocs, read_bloc]
