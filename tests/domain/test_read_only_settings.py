"""The settings of read-only servers and of sessions kept off a pooler."""

import pytest

from service.config import InvalidSettings, settings_from_env

DSN = "postgresql://app@pooler:6432/legation"


def test_sessions_use_the_database_url_unless_told_otherwise() -> None:
    assert settings_from_env({"DATABASE_URL": DSN}).session_dsn == DSN
    direct = "postgresql://app@db:5432/legation"
    given = {"DATABASE_URL": DSN, "LEGATION_SESSION_DATABASE_URL": direct}
    assert settings_from_env(given).session_dsn == direct


def test_read_only_and_a_session_url_need_a_database_url() -> None:
    # Neither makes sense against the embedded server started when DATABASE_URL is unset.
    for name, value in (("LEGATION_READ_ONLY", "true"), ("LEGATION_SESSION_DATABASE_URL", DSN)):
        with pytest.raises(InvalidSettings, match=f"{name} needs DATABASE_URL"):
            settings_from_env({name: value})


def test_read_only_settings_are_parsed() -> None:
    settings = settings_from_env(
        {
            "DATABASE_URL": DSN,
            "LEGATION_READ_ONLY": "yes",
            "LEGATION_PRIMARY_URL": "https://primary.example",
            "LEGATION_STANDBY_POLL_SECONDS": "0.5",
            "LEGATION_STATEMENT_CACHE_SIZE": "0",
        }
    )
    assert settings.read_only
    assert settings.primary_url == "https://primary.example"
    assert settings.standby_poll_seconds == 0.5
    assert settings.statement_cache_size == 0
    with pytest.raises(InvalidSettings, match="LEGATION_STANDBY_POLL_SECONDS"):
        settings_from_env({"LEGATION_STANDBY_POLL_SECONDS": "0"})
