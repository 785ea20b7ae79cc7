"""Throwaway PostgreSQL machinery on loopback: a primary with its streaming standby, PgBouncer.

Each server runs as the `postgres` user when the suite runs as root (PostgreSQL and
PgBouncer both refuse root), in a folder of its own that is removed afterwards.
Durability is traded for speed (fsync off, small buffers): nothing here outlives a test.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"
# Quick to start, nothing kept: these clusters live for one test module.
THROWAWAY = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_buffers = 16MB
max_connections = 60
fsync = off
synchronous_commit = off
full_page_writes = off
hot_standby_feedback = on
wal_receiver_status_interval = 1s
"""


def free_port() -> int:
    """A port the kernel just reported free."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    """The folder of one PostgreSQL version's server programs (initdb, pg_ctl, pg_basebackup).

    Debian keeps them under /usr/lib/postgresql/<version>/bin, off PATH; the newest wins.
    """
    given = os.environ.get("PG_BINDIR")
    candidates = [Path(given)] if given else []
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda path: int(path.parent.name), reverse=True)
    found = shutil.which("initdb")
    candidates += [Path(found).parent] if found else []
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "pg_basebackup")):
            return folder
    return None


def pgbouncer_program() -> Path | None:
    """PgBouncer's executable (Debian puts it in /usr/sbin, off a user's PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    return Path(found) if found else None


def _server_user() -> str | None:
    # Popen's own user switch: the child is the server itself, so its pid is the server's.
    return SERVER_USER if os.geteuid() == 0 else None


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        cwd="/tmp",
        user=_server_user(),
        group=_server_user(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def owned_folder(prefix: str) -> Iterator[Path]:
    """A short folder under /tmp that the server user owns, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(folder, account.pw_uid, account.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Cluster:
    """One running PostgreSQL server."""

    data: Path
    port: int

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _start(bin_dir: Path, data: Path, port: int) -> Cluster:
    log = data.parent / f"{data.name}.log"
    pg_ctl = str(bin_dir / "pg_ctl")
    _run([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o", f"-p {port}", "start"])
    return Cluster(data, port)


def _stop(bin_dir: Path, cluster: Cluster) -> None:
    # Immediate: nothing in these clusters is worth a shutdown checkpoint.
    pg_ctl = str(bin_dir / "pg_ctl")
    _run([pg_ctl, "-D", str(cluster.data), "-m", "immediate", "-w", "stop"])


def _initdb(bin_dir: Path, data: Path) -> None:
    # trust: initdb's pg_hba.conf then also lets loopback replication connections in.
    options = ["-A", "trust", "-U", SERVER_USER, "--no-sync", "-E", "UTF8", "--locale=C"]
    _run([str(bin_dir / "initdb"), "-D", str(data), *options])
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(THROWAWAY)


def _base_backup(bin_dir: Path, primary: Cluster, data: Path) -> None:
    # -R writes primary_conninfo and standby.signal: the copy starts as a streaming standby.
    source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", SERVER_USER]
    options = ["-R", "-X", "stream", "-c", "fast", "--no-sync"]
    _run([str(bin_dir / "pg_basebackup"), "-D", str(data), *source, *options])


@contextmanager
def primary_and_standby(bin_dir: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its hot standby streaming from it, both running for the block."""
    with owned_folder("lg-pair-") as folder:
        _initdb(bin_dir, folder / "primary")
        started: list[Cluster] = []
        try:
            started.append(_start(bin_dir, folder / "primary", free_port()))
            _base_backup(bin_dir, started[0], folder / "standby")
            started.append(_start(bin_dir, folder / "standby", free_port()))
            yield started[0], started[1]
        finally:
            for cluster in reversed(started):
                _stop(bin_dir, cluster)


PGBOUNCER_INI = """
[databases]
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
logfile = {folder}/pgbouncer.log
"""


@contextmanager
def pgbouncer(program: Path, server_port: int, pool_size: int = 4) -> Iterator[int]:
    """PgBouncer in transaction mode in front of the server on `server_port`; yields its port."""
    with owned_folder("lg-bouncer-") as folder:
        port = free_port()
        ini = PGBOUNCER_INI.format(
            server_port=server_port, port=port, folder=folder, pool_size=pool_size
        )
        (folder / "pgbouncer.ini").write_text(ini)
        (folder / "users.txt").write_text(f'"{SERVER_USER}" ""\n')
        argv = [str(program), str(folder / "pgbouncer.ini")]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=_server_user(),
            group=_server_user(),
        )
        try:
            _wait_for_port(port, process, folder / "pgbouncer.log")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} within 10 s")
