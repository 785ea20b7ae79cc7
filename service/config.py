"""Settings read from the environment."""

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec


class InvalidSettings(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service reads from its environment, with its defaults."""

    database_url: str | None = None
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_reads: bool = True
    webhook_allow_private: bool = False
    max_body_bytes: int = 1_048_576
    max_batch_bytes: int = 33_554_432
    read_wait_seconds: float = 5.0
    sse_heartbeat_seconds: float = 15.0
    webhook_retry_scale: float = 1.0
    rate_limit: float = 0.0  # requests a second per key or client; 0 turns limits off
    rate_burst: int = 200
    pool_min_size: int = 2
    pool_max_size: int = 10
    projector: str = "inline"  # or "separate": a `legation project` process projects


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise InvalidSettings(f"{name} must be true or false, not {value!r}")


def _number(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidSettings(f"{name} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise InvalidSettings(f"{name} must be between {low} and {high}, not {number}")
    return number


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidSettings(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0.05 <= seconds <= 3600:
        raise InvalidSettings(f"{name} must be between 0.05 and 3600 seconds, not {seconds}")
    return seconds


PROJECTORS = ("inline", "separate")


def _projector(value: str) -> str:
    if value not in PROJECTORS:
        raise InvalidSettings(f"LEGATION_PROJECTOR must be inline or separate, not {value!r}")
    return value


def _scale(value: str) -> float:
    try:
        scale = float(value)
    except ValueError:
        raise InvalidSettings(
            f"LEGATION_WEBHOOK_RETRY_SCALE must be a number, not {value!r}"
        ) from None
    if not 0.001 <= scale <= 10:
        raise InvalidSettings("LEGATION_WEBHOOK_RETRY_SCALE must be between 0.001 and 10")
    return scale


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read Settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    data_dir = env.get("LEGATION_DATA_DIR")
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        data_dir=Path(data_dir) if data_dir else None,
        host=env.get("LEGATION_HOST", "127.0.0.1"),
        port=_number("LEGATION_PORT", env.get("LEGATION_PORT", "8000"), 0, 65535),
        public_reads=_flag("LEGATION_PUBLIC_READS", env.get("LEGATION_PUBLIC_READS", "true")),
        webhook_allow_private=_flag(
            "LEGATION_WEBHOOK_ALLOW_PRIVATE", env.get("LEGATION_WEBHOOK_ALLOW_PRIVATE", "false")
        ),
        max_body_bytes=_number(
            "LEGATION_MAX_BODY_BYTES", env.get("LEGATION_MAX_BODY_BYTES", "1048576"), 1024, 1 << 30
        ),
        max_batch_bytes=_number(
            "LEGATION_MAX_BATCH_BYTES",
            env.get("LEGATION_MAX_BATCH_BYTES", "33554432"),
            1024,
            1 << 30,
        ),
        read_wait_seconds=_seconds(
            "LEGATION_READ_WAIT_SECONDS", env.get("LEGATION_READ_WAIT_SECONDS", "5")
        ),
        sse_heartbeat_seconds=_seconds(
            "LEGATION_SSE_HEARTBEAT_SECONDS", env.get("LEGATION_SSE_HEARTBEAT_SECONDS", "15")
        ),
        webhook_retry_scale=_scale(env.get("LEGATION_WEBHOOK_RETRY_SCALE", "1")),
        rate_limit=_number("LEGATION_RATE_LIMIT", env.get("LEGATION_RATE_LIMIT", "50"), 0, 100_000),
        rate_burst=_number(
            "LEGATION_RATE_BURST", env.get("LEGATION_RATE_BURST", "200"), 1, 1_000_000
        ),
        pool_max_size=_number("LEGATION_POOL_SIZE", env.get("LEGATION_POOL_SIZE", "10"), 2, 200),
        projector=_projector(env.get("LEGATION_PROJECTOR", "inline").strip().lower()),
    )
