"""Settings read from the environment: each one named, parsed and defaulted in one place."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

MIB = 1 << 20
# The built-in key secret: fine on a laptop, refused in production (see `legation serve`).
DEFAULT_KEY_SECRET = "legation api keys"


class InvalidSettings(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service reads from its environment; these are the only defaults."""

    database_url: str | None = None
    # Sessions that a transaction-mode pooler would break (LISTEN, session advisory
    # locks, migrations, the command-line tools); None: database_url.
    session_database_url: str | None = None
    statement_cache_size: int = 100  # asyncpg's; 0 behind PgBouncer < 1.21 in transaction mode
    read_only: bool = False  # a replica of reads on a hot standby: no writes, no workers
    primary_url: str | None = None  # where a read-only server sends writers
    # Where clients reach this API (scheme, host, any path prefix): CloudEvents' dataschema
    # must be an absolute URI, so deliveries name their schema under it when it is set.
    public_url: str | None = None
    standby_poll_seconds: float = 0.1  # how often a read-only server looks at what was replayed
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = "development"  # or "production": refuses the built-in key secret
    public_reads: bool = True
    webhook_allow_private: bool = False
    max_body_bytes: int = MIB
    max_batch_bytes: int = 32 * MIB
    read_wait_seconds: float = 5.0
    sse_heartbeat_seconds: float = 15.0
    webhook_retry_scale: float = 1.0
    rate_limit: float = 50.0  # requests a second per key or client; 0 turns limits off
    rate_burst: int = 200
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-For is believed
    pool_min_size: int = 2
    pool_max_size: int = 10
    projector: str = "inline"  # or "separate": a `legation project` process projects
    cache_bytes: int = 64 * MIB
    max_streams: int = 1000
    max_streams_per_address: int = 100
    stream_stall_seconds: float = 30.0  # a stream client that reads nothing this long is closed
    max_subscriptions_per_key: int = 100
    delivery_retention_days: int = 30
    key_secret: str = DEFAULT_KEY_SECRET
    access_log: bool = False

    @property
    def session_dsn(self) -> str | None:
        """Where sessions that must not be pooled by transaction connect."""
        return self.session_database_url or self.database_url


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise InvalidSettings(f"{name} must be true or false, not {value!r}")


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise InvalidSettings(f"{name} must be an integer, not {value!r}") from None
        if not low <= number <= high:
            raise InvalidSettings(f"{name} must be between {low} and {high}, not {number}")
        return number

    return parse


def _decimal(low: float, high: float, unit: str = "a number") -> Callable[[str, str], float]:
    def parse(name: str, value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise InvalidSettings(f"{name} must be {unit}, not {value!r}") from None
        if not low <= number <= high:
            raise InvalidSettings(f"{name} must be between {low} and {high}, not {number}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise InvalidSettings(f"{name} must be {' or '.join(choices)}, not {value!r}")
        return lowered

    return parse


def _networks(name: str, value: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in value.split(",") if part.strip())
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise InvalidSettings(f"{name}: {part!r} is not an address or CIDR") from None
    return parts


def _text(name: str, value: str) -> str:
    return value


def _base_url(name: str, value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidSettings(
            f"{name} must be an http(s) URL with a host and no query, such as"
            f" https://legation.example.org, not {value!r}"
        )
    return value.strip().rstrip("/")


def _optional_text(name: str, value: str) -> str | None:
    return value or None


def _path(name: str, value: str) -> Path | None:
    return Path(value) if value else None


_SECONDS = _decimal(0.05, 3600, "a number of seconds")

# field -> (environment variable, parser); a variable that is unset keeps the field's default.
_ENVIRONMENT: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "database_url": ("DATABASE_URL", _optional_text),
    "session_database_url": ("LEGATION_SESSION_DATABASE_URL", _optional_text),
    "statement_cache_size": ("LEGATION_STATEMENT_CACHE_SIZE", _integer(0, 100_000)),
    "read_only": ("LEGATION_READ_ONLY", _flag),
    "primary_url": ("LEGATION_PRIMARY_URL", _optional_text),
    "public_url": ("LEGATION_PUBLIC_URL", _base_url),
    "standby_poll_seconds": (
        "LEGATION_STANDBY_POLL_SECONDS",
        _decimal(0.01, 60, "a number of seconds"),
    ),
    "data_dir": ("LEGATION_DATA_DIR", _path),
    "host": ("LEGATION_HOST", _text),
    "port": ("LEGATION_PORT", _integer(0, 65535)),
    "env": ("LEGATION_ENV", _choice("development", "production")),
    "public_reads": ("LEGATION_PUBLIC_READS", _flag),
    "webhook_allow_private": ("LEGATION_WEBHOOK_ALLOW_PRIVATE", _flag),
    "max_body_bytes": ("LEGATION_MAX_BODY_BYTES", _integer(1024, 1 << 30)),
    "max_batch_bytes": ("LEGATION_MAX_BATCH_BYTES", _integer(1024, 1 << 30)),
    "read_wait_seconds": ("LEGATION_READ_WAIT_SECONDS", _SECONDS),
    "sse_heartbeat_seconds": ("LEGATION_SSE_HEARTBEAT_SECONDS", _SECONDS),
    "webhook_retry_scale": ("LEGATION_WEBHOOK_RETRY_SCALE", _decimal(0.001, 10)),
    "rate_limit": ("LEGATION_RATE_LIMIT", _integer(0, 100_000)),
    "rate_burst": ("LEGATION_RATE_BURST", _integer(1, 1_000_000)),
    "trusted_proxies": ("LEGATION_TRUSTED_PROXIES", _networks),
    "pool_max_size": ("LEGATION_POOL_SIZE", _integer(2, 200)),
    "projector": ("LEGATION_PROJECTOR", _choice("inline", "separate")),
    "cache_bytes": ("LEGATION_CACHE_BYTES", _integer(0, 1 << 40)),
    "max_streams": ("LEGATION_MAX_STREAMS", _integer(1, 1_000_000)),
    "max_streams_per_address": ("LEGATION_MAX_STREAMS_PER_ADDRESS", _integer(1, 1_000_000)),
    "stream_stall_seconds": ("LEGATION_STREAM_STALL_SECONDS", _SECONDS),
    "max_subscriptions_per_key": ("LEGATION_MAX_SUBSCRIPTIONS_PER_KEY", _integer(1, 1_000_000)),
    "delivery_retention_days": ("LEGATION_DELIVERY_RETENTION_DAYS", _integer(1, 36_500)),
    "key_secret": ("LEGATION_KEY_SECRET", _text),
    "access_log": ("LEGATION_ACCESS_LOG", _flag),
}


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read Settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    given = {
        field: parse(name, env[name])
        for field, (name, parse) in _ENVIRONMENT.items()
        if env.get(name, "") != ""
    }
    settings = Settings(**given)
    _check_together(settings)
    return settings


def _check_together(settings: Settings) -> None:
    # Both settings name a server that must already exist; the embedded one is neither.
    if settings.database_url is None:
        for name, value in (
            ("LEGATION_READ_ONLY", settings.read_only),
            ("LEGATION_SESSION_DATABASE_URL", settings.session_database_url),
        ):
            if value:
                raise InvalidSettings(f"{name} needs DATABASE_URL")
