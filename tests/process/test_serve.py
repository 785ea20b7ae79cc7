"""`legation serve` as a real process: embedded PostgreSQL, migrations, one append."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import make_key
from tests.factories import expulsion
from tests.servers import LEGATION, free_port, start, stop, wait_until_serving


def test_serve_without_database_url_runs_an_embedded_postgresql(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"LEGATION_DATA_DIR": str(data_dir), "LEGATION_PORT": str(port)}
    server = subprocess.Popen([str(LEGATION), "serve", "--demo"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, server)
        demo = httpx.get(f"{base}/v1/events").json()
        assert demo["last_position"] >= 1
        refused = httpx.post(f"{base}/v1/incidents", json=expulsion(), timeout=10)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        made = subprocess.run(
            [str(LEGATION), "keys", "create", "--name", "newsroom", "--scopes", "write"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{base}/v1/incidents", json=expulsion(), headers=headers, timeout=10)
        assert created.status_code == 201
        event = httpx.get(f"{base}/v1/events", params={"after": demo["last_position"]}).json()
        assert event["items"][0]["metadata"]["actor"] == "newsroom"
        assert int(created.headers["legation-position"]) == demo["last_position"] + 1
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    # The server it started is stopped on exit; the cluster stays for the next run.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    assert (data_dir / "pgdata" / "PG_VERSION").exists()


def test_sigterm_lets_a_request_in_flight_finish(dsn: str) -> None:
    import threading

    port = free_port()
    key = asyncio.run(make_key(dsn))
    # No `legation project` beside it: the log grows, the read models never follow.
    env = os.environ | {
        "DATABASE_URL": dsn,
        "LEGATION_PORT": str(port),
        "LEGATION_PROJECTOR": "separate",
    }
    server = subprocess.Popen([str(LEGATION), "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response] = []
    try:
        wait_until_serving(base, server)
        auth = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{base}/v1/incidents", json=expulsion(), headers=auth, timeout=10)
        position = created.headers["legation-position"]
        # Waits the full 5 s for a position the read models will never reach.
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx.get(f"{base}/v1/incidents", params={"min_position": position}, timeout=20)
            )
        )
        slow.start()
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        slow.join(timeout=20)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert [response.status_code for response in answers] == [503]
    assert answers[0].headers["retry-after"] == "1"


def test_every_line_a_running_server_writes_is_json_and_requests_are_logged(
    dsn: str, tmp_path: Path
) -> None:
    stderr = tmp_path / "stderr"
    base, server = start(dsn, {"access_log": "true"}, stderr=stderr)
    try:
        read = httpx.get(f"{base}/v1/events", headers={"X-Request-ID": "trace-1"}, timeout=10)
        refused = httpx.post(f"{base}/v1/incidents", json=expulsion(), timeout=10)
    finally:
        assert stop(server) == 0
    assert (read.status_code, refused.status_code) == (200, 401)
    lines = stderr.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # start-up, requests and shutdown alike
    assert any(entry["logger"] == "uvicorn.error" for entry in entries)
    access = [
        entry
        for entry in entries
        if entry["logger"] == "legation.access" and entry["path"] != "/ready"  # start()'s probe
    ]
    fields = ("method", "path", "status", "request_id", "client")
    assert [tuple(entry[name] for name in fields) for entry in access] == [
        ("GET", "/v1/events", 200, "trace-1", "127.0.0.1"),
        ("POST", "/v1/incidents", 401, refused.headers["x-request-id"], "127.0.0.1"),
    ]
    assert all(entry["ms"] >= 0 for entry in access)


def test_access_lines_are_off_unless_asked_for(dsn: str, tmp_path: Path) -> None:
    stderr = tmp_path / "stderr"
    base, server = start(dsn, {}, stderr=stderr)
    try:
        assert httpx.get(f"{base}/v1/events", timeout=10).status_code == 200
    finally:
        assert stop(server) == 0
    loggers = {json.loads(line)["logger"] for line in stderr.read_text().splitlines()}
    assert "uvicorn.error" in loggers
    assert "legation.access" not in loggers
