"""EmbeddedPostgres: start the server or join the running one; the last user out stops it."""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import pwd
import shlex
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from service.ops.embedded import binaries, registry, root
from service.ops.embedded.errors import EmbeddedPostgresError
from service.ops.embedded.files import hand_over, open_no_link, read_text

log = logging.getLogger("legation.embedded")

# sun_path holds 108 bytes on Linux and 104 on macOS; stay clear of both.
MAX_SOCKET_PATH = 100


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
            root.check_root_only_path(self.data_dir)
        with self._locked():
            if self._as_root:
                # PostgreSQL refuses to run as root, so it runs as a dedicated system user.
                self._user = root.ensure_system_user()
                self._check_entries(self._user)
                # Checked even when joining a running server: stop() may run its pg_ctl.
                binaries.copy_install(self._install_copy())
            pid = self._server_pid()
            if pid is None:
                self._launch()
            else:
                log.info("reusing embedded PostgreSQL (pid %d) in %s", pid, self.data_dir)
            self._registration = registry.register(self._users_dir)
            self._owner_pid = os.getpid()
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
            registry.unregister(self._registration)
            self._registration = None
            others = len(registry.live_users(self._users_dir))
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
        major = binaries.major(binaries.wheel_version())
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
            found = read_text(self.pgdata / "PG_VERSION").strip()
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
        return binaries.wheel_install() / "bin"

    def _prepare_as_root(self) -> Path:
        assert self._user is not None  # set by start()
        root.check_traversable(self.data_dir, self._user)
        # With trust auth, the socket folder's mode is the only access control.
        for folder in (self.pgdata, self.run_dir):
            hand_over(folder, self._user, folder=True)
        # pg_ctl opens the log as the system user, which cannot create files in D.
        hand_over(self.log_file, self._user, folder=False)
        return self._bin_dir()

    def _check_entries(self, user: pwd.struct_passwd) -> None:
        install = self._install_copy()
        expected: root.Expected = {
            self.pgdata: (stat.S_ISDIR, {0, user.pw_uid}),
            self.run_dir: (stat.S_ISDIR, {0, user.pw_uid}),
            self.log_file: (stat.S_ISREG, {0, user.pw_uid}),
            self._users_dir: (stat.S_ISDIR, {0}),
            self.data_dir / "lock": (stat.S_ISREG, {0}),
            install: (stat.S_ISDIR, {0}),
            binaries.staging(install): (stat.S_ISDIR, {0}),
        }
        root.check_entries(self.data_dir, expected, user)

    def _install_copy(self) -> Path:
        return self.data_dir / f"pgsql-{binaries.major(binaries.wheel_version())}"

    def _initdb(self, bin_dir: Path, major: int) -> None:
        log.info("creating PostgreSQL %d cluster in %s", major, self.pgdata)
        # A fixed locale keeps initdb independent of the host's installed locales;
        # the builtin provider (PG 17+) still gives Unicode-aware upper()/lower().
        locale = ["--locale=C"]
        if major >= 17:
            locale += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        args = ["--auth=trust", "--encoding=UTF8", "-U", "postgres", *locale]
        self._run(bin_dir / "initdb", "-D", self.pgdata, *args)

    # -- helpers ------------------------------------------------------------------

    def _server_pid(self) -> int | None:
        try:
            pid = int(read_text(self.pgdata / "postmaster.pid").split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if registry.is_postgres(pid) else None

    def _read_dsn(self) -> str:
        # Read from postmaster.pid: a reused server may use another port or socket folder.
        lines = read_text(self.pgdata / "postmaster.pid").splitlines()
        port, socket_dir = lines[3], lines[4]
        return f"postgresql://postgres@/postgres?host={quote(socket_dir)}&port={port}"

    def _bin_dir(self) -> Path:
        install = binaries.wheel_install()
        if self._as_root:
            return self._install_copy() / install.relative_to(binaries.site_dir()) / "bin"
        return install / "bin"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = open_no_link(self.data_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _run(self, *command: str | Path) -> None:
        user = pwd.getpwnam(root.SYSTEM_USER) if self._as_root else None
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
