"""Who may call what, without a database: every route's auth decision, scopes, rate limits."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar

from service.app import create_app
from service.config import Settings
from service.http.route_meta import SCOPES, meta_of

INCIDENT, SUBSCRIPTION = uuid.uuid4(), uuid.uuid4()


def routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, concrete path, scope) for every route of ours."""
    found: list[tuple[str, str, str]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith("/schema"):
                continue  # the docs and the OpenAPI document are public
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's own OPTIONS answers
            meta = meta_of(handler)
            assert meta is not None, f"{route.path} has no auth decision"
            assert meta.scope in SCOPES
            scope = meta.scope
            path = (
                route.path_format.replace("{incident_id}", str(INCIDENT))
                .replace("{subscription_id}", str(SUBSCRIPTION))
                .replace("{code}", "RU")
                .replace("{counterpart}", "EU")
            )
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                found.append((method, path, scope))
    return found


def test_every_route_has_an_auth_decision() -> None:
    table = routes(create_app(Settings(database_url="postgresql://unused@localhost/x")))
    assert len(table) >= 25
    assert ("POST", "/v1/incidents", "write") in table
    assert ("GET", "/v1/subscriptions", "subscribe") in table


@pytest.mark.parametrize("scopes", ["", "read,fly", "everything"])
async def test_unknown_scopes_are_refused(scopes: str) -> None:
    from service.http.keys import InvalidKeyRequest, parse_scopes

    with pytest.raises(InvalidKeyRequest):
        parse_scopes(scopes)


def test_the_rate_limit_is_on_by_default() -> None:
    from service.config import settings_from_env

    settings = settings_from_env({})
    assert (settings.rate_limit, settings.rate_burst) == (50, 200)
    assert settings_from_env({"LEGATION_RATE_LIMIT": "0"}).rate_limit == 0
