"""The app hashes keys with the key secret of its Settings, not the environment's."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import make_key


async def test_keys_are_hashed_with_the_settings_secret_not_the_environment(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATION_KEY_SECRET", "from the environment")
    by_settings = await make_key(dsn, ("subscribe",), secret="from settings")
    by_environment = await make_key(dsn, ("subscribe",), secret="from the environment")
    app = create_app(Settings(database_url=dsn, key_secret="from settings"))
    async with AsyncTestClient(app=app) as client:
        for key, status in [(by_settings, 200), (by_environment, 401)]:
            response = await client.get(
                "/v1/subscriptions", headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == status
