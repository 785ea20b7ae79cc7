"""The embedded PostgreSQL server: start, share between users, stop, restart.

Runs the real server; as root this also exercises the `legation` system user path.
"""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from service.embedded import EmbeddedPostgres, EmbeddedPostgresError

Factory = Callable[[], EmbeddedPostgres]


@pytest.fixture
def embedded(data_dir: Path) -> Iterator[Factory]:
    """Make servers on `data_dir`, all stopped at teardown even if the test fails."""
    made: list[EmbeddedPostgres] = []

    def make() -> EmbeddedPostgres:
        made.append(EmbeddedPostgres(data_dir))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


def process_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def fetch(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_shared_server_stops_with_last_user(data_dir: Path, embedded: Factory) -> None:
    first, second = embedded(), embedded()
    dsn = first.start()
    version = await fetch(dsn, "SELECT current_setting('server_version_num')::int")
    assert isinstance(version, int)
    assert version >= 150000
    pid = postmaster_pid(data_dir)

    assert second.start() == dsn
    assert postmaster_pid(data_dir) == pid

    first.stop()
    first.stop()  # idempotent
    assert await fetch(dsn, "SELECT 1") == 1
    assert process_running(pid)

    # A user that died without stopping must not keep the server alive.
    (data_dir / "users" / "999999999.0").write_text("")
    second.stop()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    # pg_ctl returns once postmaster.pid is gone, a moment before the process exits.
    for _ in range(100):
        if not process_running(pid):
            break
        await asyncio.sleep(0.05)
    assert not process_running(pid)
    assert list((data_dir / "users").iterdir()) == []


async def test_restart_keeps_data(embedded: Factory) -> None:
    server = embedded()
    with server as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        await conn.close()
    with embedded() as dsn:
        assert await fetch(dsn, "SELECT note FROM kept") == "still here"


def test_version_mismatch_names_the_folder(data_dir: Path) -> None:
    (data_dir / "pgdata").mkdir()
    (data_dir / "pgdata" / "PG_VERSION").write_text("9\n")
    with pytest.raises(EmbeddedPostgresError, match=str(data_dir / "pgdata")):
        EmbeddedPostgres(data_dir).start()


def test_socket_path_too_long_is_refused(data_dir: Path) -> None:
    deep = data_dir / ("x" * 90)
    with pytest.raises(EmbeddedPostgresError, match="LEGATION_DATA_DIR"):
        EmbeddedPostgres(deep).start()
