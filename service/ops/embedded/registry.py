"""Which live processes use the server: one file each in D/users, named <pid>.<n>.

Each holds its process's start time, which together with the pid identifies
it even after the pid is reused; the last one out stops the server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.ops.embedded.files import open_no_link, read_text

_HAS_PROCFS = Path("/proc/self/stat").exists()
# The only names deleted from D/users: the registrations register writes.
_REGISTRATION = re.compile(r"\d+\.\d+")
# Several instances may share one process (tests, reloaders), so the pid alone
# cannot name a registration.
_instance_ids = itertools.count()


@contextmanager
def users_folder(users_dir: Path) -> Iterator[int]:
    """D/users (made if missing) as a descriptor, refusing a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(users_dir, 0o755)
    fd = open_no_link(users_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def register(users_dir: Path) -> Path:
    """Record this process as a user of the server; the registration's path."""
    pid = os.getpid()
    name = f"{pid}.{next(_instance_ids)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with users_folder(users_dir) as users:
        fd = os.open(name, flags, 0o644, dir_fd=users)
        try:
            os.write(fd, start_time(pid).encode())
        finally:
            os.close(fd)
    return users_dir / name


def unregister(registration: Path) -> None:
    with users_folder(registration.parent) as users, contextlib.suppress(FileNotFoundError):
        os.unlink(registration.name, dir_fd=users)


def live_users(users_dir: Path) -> list[str]:
    live = []
    with users_folder(users_dir) as users:
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


def is_postgres(pid: int) -> bool:
    if not _HAS_PROCFS:
        return _process_alive(pid)
    # A stale postmaster.pid may name a pid since reused by another program;
    # an exited but unreaped postmaster is a zombie.
    proc = _proc_stat(pid)
    return proc is not None and proc[0].startswith("postgres") and proc[1][0] != "Z"


def start_time(pid: int) -> str:
    # Together with the pid, identifies a process even after the pid is reused.
    proc = _proc_stat(pid)
    return proc[1][19] if proc else ""


def _proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """(command name, fields from the state onwards) from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = raw.rpartition(")")
    return head.partition("(")[2], tail.split()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registration_alive(name: str, users: int) -> bool:
    try:
        pid = int(name.split(".", 1)[0])
        recorded = read_text(Path(name), dir_fd=users)
    except (OSError, ValueError):
        return False
    if not _process_alive(pid):
        return False
    return not recorded or recorded == start_time(pid)
