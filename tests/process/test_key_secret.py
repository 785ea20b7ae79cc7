"""The key secret: read through Settings only, warned about when built in, refused in production."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.config import DEFAULT_KEY_SECRET, Settings
from tests.servers import LEGATION, free_port, stop, wait_until_serving


async def test_keys_create_hashes_with_the_configured_secret(dsn: str) -> None:
    env = os.environ | {"DATABASE_URL": dsn, "LEGATION_KEY_SECRET": "configured"}
    made = await asyncio.create_subprocess_exec(
        *(str(LEGATION), "keys", "create", "--name", "cms", "--scopes", "subscribe"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    printed, _ = await made.communicate()
    assert made.returncode == 0
    key = printed.decode().strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    for secret, status in [("configured", 200), (DEFAULT_KEY_SECRET, 401)]:
        app = create_app(Settings(database_url=dsn, key_secret=secret))
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/v1/subscriptions", headers=headers)).status_code == status


def serve_env(dsn: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LEGATION_KEY_SECRET", "LEGATION_ENV")}
    return env | {"DATABASE_URL": dsn} | {f"LEGATION_{k.upper()}": v for k, v in settings.items()}


def test_production_refuses_to_serve_with_the_built_in_key_secret(dsn: str) -> None:
    refused = subprocess.run(
        [str(LEGATION), "serve", "--port", str(free_port())],
        env=serve_env(dsn, env="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "LEGATION_KEY_SECRET" in refused.stderr
    assert "production" in refused.stderr


def start_up_log(dsn: str, **settings: str) -> list[dict[str, Any]]:
    """The JSON log lines of a `legation serve` that starts, becomes ready and stops."""
    port = free_port()
    env = serve_env(dsn, port=str(port), **settings)
    server = subprocess.Popen(
        [str(LEGATION), "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", server)
    finally:
        stop(server)
    assert server.stderr is not None
    with server.stderr as log:
        lines = log.read().decode().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def key_secret_warnings(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        entry
        for entry in entries
        if entry["level"] == "warning" and "LEGATION_KEY_SECRET" in entry["message"]
    ]


def test_serve_warns_at_start_about_the_built_in_key_secret(dsn: str) -> None:
    warnings = key_secret_warnings(start_up_log(dsn))
    assert len(warnings) == 1
    assert warnings[0]["setting"] == "LEGATION_KEY_SECRET"
    assert key_secret_warnings(start_up_log(dsn, key_secret="s3cret", env="production")) == []
