"""The edge: request ids, rate limits and live standings answered from memory at one position."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import Settings
from service.http.edge import Edge
from service.http.metrics import Metrics
from service.http.route_meta import route_meta
from service.projections.answer_cache import AnswerCache


class Handler:
    """An ASGI app standing in for a remembered route: counts its calls."""

    def __init__(self, position: int, csv: bool = False) -> None:
        self.calls, self.position = 0, position
        self.opt = route_meta(scope="read", remember=True, csv=csv)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        headers = [(b"legation-position", str(self.position).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        accept = dict(scope["headers"]).get(b"accept", b"")
        await send({"type": "http.response.body", "body": b'{"n":%d}%s' % (self.calls, accept)})


Answer = tuple[int, bytes, dict[bytes, bytes]]


async def get(edge: Any, handler: Handler, query: bytes = b"", **headers: bytes) -> Answer:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/countries/RU",
        "query_string": query,
        "headers": [(name.replace("_", "-").encode(), value) for name, value in headers.items()],
        "route_handler": handler,
    }
    await edge(scope, None, send)
    return sent[0]["status"], sent[1]["body"], dict(sent[0]["headers"])


async def test_a_live_answer_is_replayed_while_the_position_stays() -> None:
    handler, answers = Handler(7), AnswerCache(1 << 20)
    answers.advance(7)  # as the projector does when the read models move
    edge = Edge(Settings(), Metrics(), answers)(handler)
    first = await get(edge, handler)
    second = await get(edge, handler)
    assert handler.calls == 1
    assert first[1] == second[1] == b'{"n":1}'
    assert first[2][b"x-request-id"] != second[2][b"x-request-id"]
    handler.position = 8
    answers.advance(8)
    assert (await get(edge, handler))[1] == b'{"n":2}'
    assert handler.calls == 2


@pytest.mark.parametrize(
    ("query", "headers"),
    [(b"known_at=3", {}), (b"", {"if_none_match": b'"x"'})],
)
async def test_what_depends_on_more_than_url_and_position_is_never_replayed(
    query: bytes, headers: dict[str, bytes]
) -> None:
    handler, answers = Handler(7), AnswerCache(1 << 20)
    answers.advance(7)
    edge = Edge(Settings(), Metrics(), answers)(handler)
    await get(edge, handler, query, **headers)
    await get(edge, handler, query, **headers)
    assert handler.calls == 2


async def test_nothing_is_replayed_when_reads_need_a_key() -> None:
    handler, answers = Handler(7), AnswerCache(1 << 20)
    answers.advance(7)
    edge = Edge(Settings(public_reads=False), Metrics(), answers)(handler)
    await get(edge, handler)
    await get(edge, handler)
    assert handler.calls == 2


async def test_json_and_csv_answers_of_one_url_are_kept_apart() -> None:
    handler, answers = Handler(7, csv=True), AnswerCache(1 << 20)
    answers.advance(7)
    edge = Edge(Settings(), Metrics(), answers)(handler)
    for _ in range(2):
        assert (await get(edge, handler))[1] == b'{"n":1}'
        assert (await get(edge, handler, accept=b"text/csv"))[1] == b'{"n":2}text/csv'
        # Another header asking for the same representation is the same answer.
        assert (await get(edge, handler, accept=b"application/json"))[1] == b'{"n":1}'
    assert handler.calls == 2


async def test_a_route_without_csv_never_replays_to_a_csv_only_request() -> None:
    handler, answers = Handler(7), AnswerCache(1 << 20)
    answers.advance(7)
    edge = Edge(Settings(), Metrics(), answers)(handler)
    await get(edge, handler)
    await get(edge, handler, accept=b"text/csv")  # the app answers 406 here
    await get(edge, handler, accept=b"text/csv")
    assert handler.calls == 3
