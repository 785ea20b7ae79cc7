"""The embedded PostgreSQL without a server: its default folder and the hand-over."""

import os
import pwd
from pathlib import Path

import pytest

from service.ops.embedded import EmbeddedPostgresError, _hand_over, default_data_dir


def test_default_data_dir_leaves_legation_data_dir_to_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "from-the-environment"
    monkeypatch.setenv("LEGATION_DATA_DIR", str(configured))
    assert default_data_dir() != configured
    assert not configured.exists()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks target root")


NOBODY = pwd.getpwnam("nobody")


@needs_root
@pytest.mark.parametrize("folder", [False, True], ids=["log", "folder"])
def test_handing_over_never_follows_a_link(tmp_path: Path, folder: bool) -> None:
    # The last line of defence, should a link ever get into the data folder.
    victim = tmp_path / "victim"
    if folder:
        victim.mkdir()
    else:
        victim.write_text("")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(EmbeddedPostgresError, match="is a link"):
        _hand_over(tmp_path / "link", NOBODY, folder=folder)
    assert victim.stat().st_uid == 0
