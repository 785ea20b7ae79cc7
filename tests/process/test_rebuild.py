"""The `legation rebuild` command, run as a process."""

from __future__ import annotations

import asyncio
import subprocess

from service.log.database import connect
from service.ops.demo import load_demo
from service.projections.rebuild import log_head
from tests.servers import LEGATION


def test_the_command_reports_the_position_it_rebuilt_to(dsn: str) -> None:
    env = {"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [str(LEGATION), "rebuild"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "rebuilt the read models from the log up to position 0" in run.stdout


def test_the_command_folds_in_the_parts_asked_for(dsn: str) -> None:
    asyncio.run(load_demo(dsn))
    head = asyncio.run(log_head(dsn))
    assert head > 0
    env = {"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [str(LEGATION), "rebuild", "--parts", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert f"rebuilt the read models from the log up to position {head}" in run.stdout
    rows = asyncio.run(_count(dsn, "SELECT count(*) FROM incidents"))
    assert rows == asyncio.run(_count(dsn, "SELECT count(DISTINCT stream) FROM events")) > 0


async def _count(dsn: str, query: str) -> int:
    conn = await connect(dsn)
    try:
        count: int = await conn.fetchval(query)
        return count
    finally:
        await conn.close()


def test_the_command_refuses_a_part_count_below_one(dsn: str) -> None:
    run = subprocess.run(
        [str(LEGATION), "rebuild", "--parts", "0"],
        env={"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "--parts: '0' is not a whole number of at least 1" in run.stderr
