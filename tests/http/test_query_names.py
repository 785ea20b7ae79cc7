"""Unknown query parameters are a 422 naming each of them, on every route (API.md, "Lists")."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from service.http.openapi.document import document
from service.http.query_names import QueryNames
from tests.factories import expulsion
from tests.http.every_route import ENDLESS, INCIDENT, operations

Client = AsyncTestClient[Any]
UNKNOWN = "q=Kreminna&disputed&limt=5&q=again"
NOT_TAKEN = "is not a query parameter of this route"
# A valid value for every name a route takes; a new parameter needs one here.
SAMPLES = {
    "after": "0",
    "as_of": "2022-04-30",
    "from": "2022-04-01",
    "q": "Russia",
    "theme": "dark",
    "version": "1",
    "controller": "RU",
    "country": "UA",
    "known_at": "0",
    "kind": "expulsion",
    "limit": "1",
    "members": "false",
    "min_position": "0",
    "region": "UA-09",
    "since": "2022-04-01",
    "sort": "balance",
    "status": "active",
    "type": "expulsion.reported",
    "until": "2022-04-30",
}
NEEDS_A_PAGE = {"cursor"}  # the paging tests follow real cursors


def learnt(app: Litestar) -> QueryNames:
    names = QueryNames()
    names.learn(app)
    return names


def an_app() -> Litestar:
    return create_app(Settings(database_url="postgresql://unused@localhost/x"))


async def test_every_route_refuses_unknown_names_naming_each_once(client: Client) -> None:
    checked, app = 0, an_app()
    names = learnt(app)
    for method, path, handler in operations(app):
        answer = await client.request(method, f"{path}?{UNKNOWN}")
        assert answer.status_code == 422, (method, path, answer.text)
        problem = answer.json()
        assert problem["type"] == "urn:legation:problem:validation"
        unknown = [n for n in ("q", "disputed", "limt") if n not in names.taken_by(handler)]
        assert problem["errors"] == [{"field": name, "message": NOT_TAKEN} for name in unknown], (
            method,
            path,
        )
        checked += 1
    assert checked >= 30  # ours and Litestar's schema pages


async def test_every_name_a_route_takes_is_still_taken(client: Client) -> None:
    app = an_app()
    names = learnt(app)
    for method, path, handler in operations(app):
        if method != "GET" or path in ENDLESS:  # the stream would not end
            continue
        taken = names.taken_by(handler) - NEEDS_A_PAGE
        assert taken <= SAMPLES.keys(), f"{path}: no sample for {taken - SAMPLES.keys()}"
        answer = await client.get(path, params={name: SAMPLES[name] for name in taken})
        # Ids made up for the test are not found; everything else answers.
        assert answer.status_code in (200, 204, 303, 404), (path, answer.text)


async def test_known_names_pass_while_the_unknown_one_is_named(client: Client) -> None:
    answer = await client.get("/v1/countries/RU/timeline?limit=1&as_of=2022-04-30&sort=balance")
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == ["sort"]
    assert "as_of" in answer.json()["detail"]  # the names it takes are listed


async def test_the_names_taken_are_the_names_the_document_lists() -> None:
    app = an_app()
    names, paths = learnt(app), document(app)["paths"]
    compared = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            operation = paths[route.path_format].get(method.lower())
            if operation is None:
                continue
            listed = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert listed == names.taken_by(handler), (method, route.path_format)
            assert "422" in operation["responses"], (method, route.path_format)
            compared += 1
    assert compared >= 25


async def test_every_read_that_reflects_the_log_takes_min_position(client: Client) -> None:
    """API.md: reads accept min_position. Those of the log itself wait for nothing."""
    made = await client.post("/v1/incidents", json=expulsion(id=str(INCIDENT)))
    head = int(made.headers["legation-position"])
    app = an_app()
    names, reads = learnt(app), 0
    for method, path, handler in operations(app):
        if method != "GET" or path in ENDLESS:
            continue
        answer = await client.get(path)
        if "legation-position" not in answer.headers:
            continue
        assert "min_position" in names.taken_by(handler), path
        assert (await client.get(path, params={"min_position": head})).status_code == 200, path
        beyond = await client.get(path, params={"min_position": head + 1})
        assert beyond.status_code == 422, path
        assert beyond.json()["errors"] == [
            {"field": "min_position", "message": f"is beyond the log's head ({head})"}
        ]
        reads += 1
    assert reads >= 9  # incidents, an incident, its events, the log, the standings
