"""`legation serve` as a real process, for tests that need a real transport or a real crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

LEGATION = Path(sys.executable).parent / "legation"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(base: str, server: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert server.poll() is None, "legation serve exited early"
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"legation serve did not become ready within {within:.0f} s")


Server = subprocess.Popen[bytes]


def start(
    dsn: str,
    settings: Mapping[str, str],
    port: int | None = None,
    stderr: Path | None = None,
    demo: bool = False,
) -> tuple[str, Server]:
    """Start `legation serve` on `dsn`; returns its base URL and process once it is ready.

    `settings` are LEGATION_* variables without the prefix (`{"rate_limit": "0"}`);
    the server's stderr goes to the file `stderr` if given, else nowhere; `demo`
    loads the demo's incidents (`--demo`).
    """
    port = port or free_port()
    env = os.environ | {"DATABASE_URL": dsn, "LEGATION_PORT": str(port)}
    env |= {f"LEGATION_{name.upper()}": value for name, value in settings.items()}
    with open(stderr, "wb") if stderr else open(os.devnull, "wb") as log:
        command = [str(LEGATION), "serve", *(["--demo"] if demo else [])]
        process = subprocess.Popen(command, env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return base, process


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it has not exited within 30 s; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextmanager
def serving(dsn: str, **settings: str) -> Iterator[str]:
    """A running `legation serve` on `dsn` for the duration of the block."""
    base, process = start(dsn, settings)
    try:
        yield base
    finally:
        stop(process)
