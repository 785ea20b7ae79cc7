"""Opening, reading and handing over files in the data folder without following links."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from pathlib import Path

from service.ops.embedded.errors import EmbeddedPostgresError

GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def open_no_link(path: Path, flags: int, mode: int = 0o600) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        why = {errno.ELOOP: "it is a link", errno.ENOTDIR: "it is a link or not a folder"}
        reason = why.get(exc.errno or 0, exc.strerror)
        raise EmbeddedPostgresError(f"cannot open {path}: {reason}") from None


def hand_over(path: Path, user: pwd.struct_passwd, *, folder: bool) -> None:
    """Give the system user `path` (made if missing), never a file a link points to."""
    if folder:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        flags, mode = os.O_RDONLY | os.O_DIRECTORY, 0o700
    else:
        # O_NONBLOCK: opening a planted FIFO must not hang.
        flags, mode = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK, 0o640
    fd = open_no_link(path, flags, mode)
    try:
        st = os.fstat(fd)
        if not folder and (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1):
            raise EmbeddedPostgresError(f"{path} is not a plain file with a single link")
        os.fchown(fd, user.pw_uid, user.pw_gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def read_text(path: Path, dir_fd: int | None = None) -> str:
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
