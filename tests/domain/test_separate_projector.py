"""The LEGATION_PROJECTOR setting: inline or separate."""

from __future__ import annotations

import pytest

from service.config import InvalidSettings, settings_from_env


def test_the_projector_setting_takes_inline_or_separate() -> None:
    assert settings_from_env({}).projector == "inline"
    assert settings_from_env({"LEGATION_PROJECTOR": "Separate"}).projector == "separate"
    with pytest.raises(InvalidSettings, match="LEGATION_PROJECTOR"):
        settings_from_env({"LEGATION_PROJECTOR": "elsewhere"})
