"""Running as root: the system user PostgreSQL runs as, and the checks on the data folder.

Run as root, the data folder must be one no other user can change: otherwise
whoever controls it could plant links that make root chown or delete files
elsewhere, or a pg_ctl that root runs as `legation`.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import stat
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from service.ops.embedded.errors import EmbeddedPostgresError
from service.ops.embedded.files import GROUP_OTHER_WRITE

log = logging.getLogger("legation.embedded")

SYSTEM_USER = "legation"
ROOT_DATA_DIR = Path("/var/lib/legation")

# For each name the data folder may hold: the file type it must have, and its possible owners.
Expected = Mapping[Path, tuple[Callable[[int], bool], set[int]]]


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


def ensure_system_user() -> pwd.struct_passwd:
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


def check_root_only_path(data_dir: Path) -> None:
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
        elif st.st_mode & GROUP_OTHER_WRITE and not sticky_parent:
            why = "is writable by group or other"
        else:
            continue
        raise EmbeddedPostgresError(
            f"refusing the data folder {data_dir}: {path} {why}, so a user other than root "
            "could make root change files elsewhere or run their programs; use a folder "
            f"only root can write, such as {ROOT_DATA_DIR}"
        )


def check_entries(data_dir: Path, expected: Expected, user: pwd.struct_passwd) -> None:
    """Refuse links, odd file types and other users' files among the names D holds.

    D is root's alone (check_root_only_path), so these come from root or
    from the system user, which owns the cluster, socket folder and log.
    """
    for path, (right_type, owners) in expected.items():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or not right_type(st.st_mode):
            why = "is a link or of the wrong type"
        elif st.st_uid not in owners:
            why = f"is owned by uid {st.st_uid}, not root or {user.pw_name}"
        elif st.st_mode & GROUP_OTHER_WRITE:
            why = "is writable by group or other"
        elif stat.S_ISREG(st.st_mode) and st.st_nlink != 1:
            why = "has other hard links"
        else:
            continue
        raise EmbeddedPostgresError(
            f"refusing the data folder {data_dir}: {path} {why}; run as root, "
            "Legation follows no links in it and trusts no other user's files there"
        )


def check_traversable(data_dir: Path, user: pwd.struct_passwd) -> None:
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for folder in (data_dir, *data_dir.parents):
        if not _can_traverse(folder.stat(), user.pw_uid, groups):
            raise EmbeddedPostgresError(
                f"the {user.pw_name} user that runs PostgreSQL cannot enter {folder}, "
                f"so it cannot reach {data_dir}; "
                "set LEGATION_DATA_DIR=/var/lib/legation (or another folder it can reach)"
            )


def _can_traverse(st: os.stat_result, uid: int, groups: set[int]) -> bool:
    # POSIX checks only the first matching class: owner, then group, then other.
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
