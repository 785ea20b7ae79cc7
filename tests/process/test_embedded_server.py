"""The embedded PostgreSQL server: start, share between users, stop, restart.

Runs the real server; as root this also exercises the `legation` system user path,
and the attacks another local user could mount through the data folder.
"""

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from service.ops.embedded import EmbeddedPostgres, EmbeddedPostgresError, _wheel_version
from tests.domain.test_embedded_server import NOBODY, needs_root

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
    # A name the code did not write is never its to delete.
    (data_dir / "users").mkdir()
    (data_dir / "users" / "notes").write_text("")
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
    assert [entry.name for entry in (data_dir / "users").iterdir()] == ["notes"]


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


# -- another local user against root ----------------------------------------------
#
# Each attack is tried twice: in a data folder the attacker owns (refused outright)
# and planted in a root-owned one (refused because links and other users' files
# are never followed or trusted).

OWNERS = pytest.mark.parametrize("foreign", [True, False], ids=["their-folder", "root-folder"])


def give_to_nobody(path: Path) -> None:
    """Make `path` and all it holds the attacker's, as if they had created it."""
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(folder, name), NOBODY.pw_uid, NOBODY.pw_gid, follow_symlinks=False)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)


def planted(data_dir: Path, foreign: bool) -> Path:
    if foreign:
        give_to_nobody(data_dir)
    return data_dir


@needs_root
@OWNERS
def test_a_log_link_does_not_hand_a_root_file_over(
    data_dir: Path, tmp_path: Path, embedded: Factory, foreign: bool
) -> None:
    victim = tmp_path / "root-only"
    victim.write_text("secret")
    (data_dir / "postgresql.log").symlink_to(victim)
    planted(data_dir, foreign)
    with pytest.raises(EmbeddedPostgresError, match=f"refusing the data folder {data_dir}"):
        embedded().start()
    assert victim.stat().st_uid == 0


@needs_root
@OWNERS
def test_a_pgdata_link_does_not_hand_a_root_folder_over(
    data_dir: Path, tmp_path: Path, embedded: Factory, foreign: bool
) -> None:
    victim = tmp_path / "root-folder"
    victim.mkdir(mode=0o700)
    (data_dir / "pgdata").symlink_to(victim)
    planted(data_dir, foreign)
    with pytest.raises(EmbeddedPostgresError, match=f"refusing the data folder {data_dir}"):
        embedded().start()
    assert victim.stat().st_uid == 0


@needs_root
@OWNERS
def test_a_users_link_does_not_empty_the_folder_it_names(
    data_dir: Path, tmp_path: Path, embedded: Factory, foreign: bool
) -> None:
    victim = tmp_path / "kept"
    victim.mkdir()
    for name in ("1.0", "notes"):
        (victim / name).write_text("")
    (data_dir / "users").symlink_to(victim)
    planted(data_dir, foreign)
    server = embedded()
    with pytest.raises(EmbeddedPostgresError, match=f"refusing the data folder {data_dir}"):
        server.start()
    server.stop()
    assert sorted(os.listdir(victim)) == ["1.0", "notes"]


@needs_root
@OWNERS
def test_a_planted_pg_ctl_never_runs(data_dir: Path, embedded: Factory, foreign: bool) -> None:
    # A copy marked complete, holding the attacker's programs instead of PostgreSQL's.
    drop = data_dir / "drop"
    drop.mkdir()
    drop.chmod(0o777)  # the programs would run as the system user
    marker = drop / "ran"
    bin_dir = embedded()._bin_dir()
    install = bin_dir.parents[2]  # D/pgsql-<major>
    bin_dir.mkdir(parents=True)
    (install / ".copied").write_text(_wheel_version())
    for program in ("initdb", "pg_ctl", "postgres"):
        (bin_dir / program).write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        (bin_dir / program).chmod(0o755)
        os.chown(bin_dir / program, NOBODY.pw_uid, NOBODY.pw_gid)
    planted(data_dir, foreign)
    with pytest.raises(EmbeddedPostgresError, match="refusing the"):
        embedded().start()
    assert not marker.exists()


@needs_root
@pytest.mark.parametrize("unsafe", ["parent-not-root", "parent-world-writable", "group-writable"])
def test_a_folder_another_user_could_swap_or_fill_is_refused(
    data_dir: Path, embedded: Factory, unsafe: str
) -> None:
    folder = data_dir / "data"
    folder.mkdir(mode=0o755)
    if unsafe == "parent-not-root":
        os.chown(data_dir, NOBODY.pw_uid, NOBODY.pw_gid)
        culprit = data_dir
    elif unsafe == "parent-world-writable":
        data_dir.chmod(0o777)  # without the sticky bit anyone may rename `data`
        culprit = data_dir
    else:
        folder.chmod(0o775)
        culprit = folder
    server = EmbeddedPostgres(folder)
    try:
        with pytest.raises(EmbeddedPostgresError, match=f"{folder}: {culprit} is"):
            server.start()
    finally:
        server.stop()
    assert not (folder / "pgdata").exists()
