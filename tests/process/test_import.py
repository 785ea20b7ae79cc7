"""The `legation import` command, run as a process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.db.test_import import write
from tests.factories import expulsion
from tests.servers import LEGATION


def test_the_command_prints_a_summary_and_fails_on_bad_lines(dsn: str, tmp_path: Path) -> None:
    path = write(tmp_path / "cli.ndjson", expulsion(), expulsion(expelled="RU"))
    env = {"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [str(LEGATION), "import", str(path)], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "imported 1, skipped 0 (already present), failed 1" in run.stdout
    assert "line 2: expelled: must differ from expelling" in run.stdout
