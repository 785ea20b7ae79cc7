"""The `legation rebuild` command, run as a process."""

from __future__ import annotations

import subprocess

from tests.servers import LEGATION


def test_the_command_reports_the_position_it_rebuilt_to(dsn: str) -> None:
    env = {"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [str(LEGATION), "rebuild"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "rebuilt the read models from the log up to position 0" in run.stdout
