"""Settings, read once from the environment (docs/protocol.md §1).

Nothing else in the code base reads ``os.environ``: the composition root calls
:func:`load_settings` once and hands the frozen result to whoever needs it.
Every invalid value raises :class:`SettingsError` naming the variable and what
is wrong with it, so an operator sees one line, not a traceback.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from server.redis_topology import RedisUrlError, check_prefix, default_prefix, parse_redis_url

# Re-exported: what the rest of the code base imports from ``server.settings``.
from server.settings.database_url import DatabaseKind as DatabaseKind
from server.settings.database_url import DatabaseUrl as DatabaseUrl
from server.settings.database_url import database_name as database_name
from server.settings.database_url import parse_database_url as parse_database_url
from server.settings.database_url import postgres_beside
from server.settings.database_url import redact as redact
from server.settings.errors import SettingsError as SettingsError
from server.settings.secret_key import GENERATE_KEY, check_secret_key, previous_secret_keys
from server.settings.secret_key import MIN_SECRET_BITS as MIN_SECRET_BITS
from server.settings.secret_key import estimated_entropy_bits as estimated_entropy_bits

LogFormat = Literal["console", "json"]

DEFAULT_DATABASE_URL = "sqlite:///./moodboard.sqlite3"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenancePolicy:
    """What the maintenance jobs keep: events (per project, and by age), ended rows."""

    keep_events: int
    keep_event_days: int
    keep_ended_days: int
    purge_after_days: int = 30
    batch_rows: int = 1000
    storage_dir: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a deployment configures. Built by :func:`load_settings`."""

    database: DatabaseUrl = field(default_factory=lambda: parse_database_url(DEFAULT_DATABASE_URL))
    redis_url: str | None = None
    redis_prefix: str = "mb:"  # every Redis key and channel starts with it
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: tuple[str, ...] = ()
    public_origins: tuple[str, ...] = ()  # empty: the bind address's (see own_origins)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    secret_key_generated: bool = True
    # Earlier keys, for verification only: a rotation signs nothing new with them.
    secret_keys_previous: tuple[str, ...] = ()
    signup_credits: int = 100
    generation_cost: int = 10
    inprocess_worker: bool = True
    generation_lease_s: int = 30
    generation_max_attempts: int = 3
    storage_dir: str = "./moodboard-files"
    storage_max_upload_bytes: int = 10 * 1024 * 1024
    worker_server_urls: tuple[str, ...] = ("http://127.0.0.1:8000",)
    worker_key: str | None = None
    worker_concurrency: int = 1
    worker_poll_s: float = 1.0
    worker_step_delay_s: float = 0.25
    worker_grace_s: float = 10.0
    log_format: LogFormat = "console"
    log_level: str = "info"
    db_pool_size: int = 10
    redis_pool_size: int = 50
    session_ttl_s: int = 14 * 24 * 3600
    invitation_ttl_s: int = 7 * 24 * 3600
    login_failures_per_minute: int = 10
    cookie_secure: bool | None = None  # None: Secure when the request came over https
    max_joins_per_socket: int = 20
    max_sockets_per_user: int = 50
    max_connections: int = 10_000
    header_timeout_s: float = 10.0
    socket_rate: int = 50
    socket_burst: int = 100
    outbox_frames: int = 1024
    edit_batch: int = 64
    drain_window_s: float = 5.0
    presence_ttl_s: float = 15.0
    presence_flush_s: float = 0.05
    write_delay_s: float = 0.002
    feed_heal_s: float = 2.0
    access_check_s: float = 1.0
    auth_timeout_s: float = 10.0
    event_retention_events: int = 10_000
    event_retention_days: int = 30
    ended_retention_days: int = 7
    purge_after_days: int = 30
    maintenance_interval_s: int = 3600
    forwarded_allow_ips: str = "127.0.0.1"
    fast_upgrade: bool = True
    metrics_token: str | None = None  # None: /metrics answers loopback peers only
    backup_dir: str = "./backups"
    backup_encrypt_to: str | None = None
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4

    @property
    def maintenance_policy(self) -> MaintenancePolicy:
        """What the maintenance jobs keep (server/ops/maintenance.py)."""
        return MaintenancePolicy(
            keep_events=self.event_retention_events,
            keep_event_days=self.event_retention_days,
            keep_ended_days=self.ended_retention_days,
            purge_after_days=self.purge_after_days,
            storage_dir=self.storage_dir,
        )

    @property
    def own_origins(self) -> tuple[str, ...]:
        """The server's own origins: ``MOODBOARD_PUBLIC_URL``, else the bind address's.

        Never the request's Host header, which a DNS-rebinding page controls.
        """
        return self.public_origins or bind_origins(self.host, self.port)

    @property
    def verification_keys(self) -> tuple[str, ...]:
        """The keys a signed value may carry: the current one first, then the previous ones."""
        return (self.secret_key, *self.secret_keys_previous)

    @property
    def embedded(self) -> bool:
        """SQLite and the in-process broker: one instance, nothing to install."""
        return self.database.kind == "sqlite" and self.redis_url is None


def _redis_url(value: str) -> str:
    try:
        parse_redis_url(value)
    except RedisUrlError as exc:
        raise SettingsError("REDIS_URL", str(exc)) from None
    return value


def _redis_prefix(env: Mapping[str, str], database: DatabaseUrl) -> str:
    """``MOODBOARD_REDIS_PREFIX``, or ``mb:<database name>:``."""
    raw = env.get("MOODBOARD_REDIS_PREFIX", "").strip()
    if not raw:
        return default_prefix(database_name(database))
    try:
        return check_prefix(raw)
    except ValueError as exc:
        raise SettingsError("MOODBOARD_REDIS_PREFIX", str(exc)) from None


def _int(env: Mapping[str, str], variable: str, default: int, low: int, high: int) -> int:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(variable, f"expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(variable, f"{value} is out of range {low}..{high}")
    return value


def _bool(env: Mapping[str, str], variable: str, default: bool) -> bool:
    raw = env.get(variable, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(variable, f"expected true/false (or 1/0, on/off), got {raw!r}")


def _http_urls(env: Mapping[str, str], variable: str, default: str) -> tuple[str, ...]:
    """A comma list of http(s) base URLs (at least one), without trailing slashes."""
    raw = env.get(variable, "").strip() or default
    urls = []
    for item in (part.strip() for part in raw.split(",")):
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(variable, f"{item!r} is not a URL like http://127.0.0.1:8000")
        urls.append(item.rstrip("/"))
    return tuple(urls)


def _optional_bool(env: Mapping[str, str], variable: str) -> bool | None:
    """Unset or ``auto`` means None: decide per request."""
    if env.get(variable, "").strip().lower() in ("", "auto"):
        return None
    return _bool(env, variable, False)


def _origins(
    env: Mapping[str, str], variable: str = "MOODBOARD_ALLOWED_ORIGINS"
) -> tuple[str, ...]:
    raw = env.get(variable, "")
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise SettingsError(variable, f"{item!r} is not an origin like https://app.example.com")
        origins.append(origin_of(parts.scheme, parts.netloc))
    return tuple(origins)


def origin_of(scheme: str, netloc: str) -> str:
    """``scheme://host[:port]`` as browsers write it in ``Origin``: lower case, no default port."""
    netloc = netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc.removesuffix(default)
    return f"{scheme}://{netloc}"


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_ALL_INTERFACES = ("0.0.0.0", "::", "")  # noqa: S104 - names, not a bind


def bind_origins(host: str, port: int) -> tuple[str, ...]:
    """The origins of ``http://host:port``; for loopback or all interfaces, every loopback name.

    Bound to all interfaces, the server cannot know the names it is reached by:
    set ``MOODBOARD_PUBLIC_URL`` (the loopback names still work on the machine).
    """
    host = host.strip().lower()
    if host in _ALL_INTERFACES or host in ("127.0.0.1", "localhost", "::1"):
        names: tuple[str, ...] = _LOOPBACK_NAMES
    else:
        names = (f"[{host}]" if ":" in host else host,)
    return tuple(origin_of("http", f"{name}:{port}") for name in names)


def _log_format(env: Mapping[str, str]) -> LogFormat:
    raw = env.get("MOODBOARD_LOG_FORMAT", "").strip().lower()
    if not raw:
        # Readable in a terminal, JSON wherever logs are collected.
        return "console" if sys.stderr.isatty() else "json"
    if raw == "console":
        return "console"
    if raw == "json":
        return "json"
    raise SettingsError("MOODBOARD_LOG_FORMAT", f"expected console or json, got {raw!r}")


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("MOODBOARD_LOG_LEVEL", "").strip().lower() or "info"
    if raw not in _LOG_LEVELS:
        raise SettingsError("MOODBOARD_LOG_LEVEL", f"expected one of {', '.join(_LOG_LEVELS)}")
    return raw


def _metrics_token(env: Mapping[str, str]) -> str | None:
    raw = env.get("MOODBOARD_METRICS_TOKEN", "").strip()
    if raw and len(raw) < 16:
        raise SettingsError("MOODBOARD_METRICS_TOKEN", "must be at least 16 characters")
    return raw or None


def database_from_env(environ: Mapping[str, str] | None = None) -> DatabaseUrl:
    """Only ``DATABASE_URL``: what Piccolo's own CLI needs (piccolo_conf.py)."""
    env = os.environ if environ is None else environ
    return parse_database_url(env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or from ``environ`` in tests).

    Raises:
        SettingsError: the first invalid variable, named, with what is wrong.
    """
    env = os.environ if environ is None else environ
    database = database_from_env(env)
    if database.kind == "postgres":
        database = replace(
            database,
            listen_url=postgres_beside(env, "MOODBOARD_DATABASE_LISTEN_URL", database),
            replica_url=postgres_beside(env, "MOODBOARD_DATABASE_REPLICA_URL", database),
            statement_cache=_int(env, "MOODBOARD_DATABASE_STATEMENT_CACHE", 100, 0, 100_000),
        )
    else:
        for variable in ("MOODBOARD_DATABASE_LISTEN_URL", "MOODBOARD_DATABASE_REPLICA_URL"):
            postgres_beside(env, variable, database)
    redis_raw = env.get("REDIS_URL", "").strip()
    redis_url = _redis_url(redis_raw) if redis_raw else None
    embedded = database.kind == "sqlite" and redis_url is None

    secret = env.get("MOODBOARD_SECRET_KEY", "").strip()
    if secret:
        check_secret_key("MOODBOARD_SECRET_KEY", secret)
    if not secret and not embedded:
        raise SettingsError(
            "MOODBOARD_SECRET_KEY",
            "required outside embedded mode (PostgreSQL or Redis configured); "
            f"generate one with: {GENERATE_KEY}",
        )
    previous = previous_secret_keys(env, secret)

    host = env.get("MOODBOARD_HOST", "").strip() or "127.0.0.1"
    return Settings(
        database=database,
        redis_url=redis_url,
        redis_prefix=_redis_prefix(env, database),
        host=host,
        port=_int(env, "MOODBOARD_PORT", 8000, 0, 65535),
        allowed_origins=_origins(env),
        public_origins=_origins(env, "MOODBOARD_PUBLIC_URL"),
        secret_key=secret or secrets.token_urlsafe(32),
        secret_key_generated=not secret,
        secret_keys_previous=previous,
        signup_credits=_int(env, "MOODBOARD_SIGNUP_CREDITS", 100, 0, 10**9),
        generation_cost=_int(env, "MOODBOARD_GENERATION_COST", 10, 0, 10**9),
        inprocess_worker=_bool(env, "MOODBOARD_INPROCESS_WORKER", embedded),
        generation_lease_s=_int(env, "MOODBOARD_GENERATION_LEASE_SECONDS", 30, 1, 3600),
        generation_max_attempts=_int(env, "MOODBOARD_GENERATION_MAX_ATTEMPTS", 3, 1, 100),
        storage_dir=env.get("MOODBOARD_STORAGE_DIR", "").strip() or "./moodboard-files",
        storage_max_upload_bytes=_int(
            env, "MOODBOARD_STORAGE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, 1, 1024**3
        ),
        worker_server_urls=_http_urls(env, "MOODBOARD_WORKER_SERVER_URL", "http://127.0.0.1:8000"),
        worker_key=env.get("MOODBOARD_WORKER_KEY", "").strip() or None,
        worker_concurrency=_int(env, "MOODBOARD_WORKER_CONCURRENCY", 1, 1, 256),
        worker_poll_s=_int(env, "MOODBOARD_WORKER_POLL_MS", 1000, 10, 600_000) / 1000,
        worker_step_delay_s=_int(env, "MOODBOARD_WORKER_STEP_DELAY_MS", 250, 0, 600_000) / 1000,
        worker_grace_s=_int(env, "MOODBOARD_WORKER_GRACE_MS", 10_000, 0, 600_000) / 1000,
        log_format=_log_format(env),
        log_level=_log_level(env),
        db_pool_size=_int(env, "MOODBOARD_DB_POOL_SIZE", 10, 1, 1000),
        redis_pool_size=_int(env, "MOODBOARD_REDIS_POOL_SIZE", 50, 2, 10_000),
        session_ttl_s=3600 * _int(env, "MOODBOARD_SESSION_TTL_HOURS", 14 * 24, 1, 24 * 366),
        invitation_ttl_s=3600 * _int(env, "MOODBOARD_INVITATION_TTL_HOURS", 7 * 24, 1, 24 * 90),
        login_failures_per_minute=_int(env, "MOODBOARD_LOGIN_FAILURES_PER_MINUTE", 10, 1, 10_000),
        cookie_secure=_optional_bool(env, "MOODBOARD_COOKIE_SECURE"),
        max_joins_per_socket=_int(env, "MOODBOARD_MAX_JOINS_PER_SOCKET", 20, 1, 10_000),
        max_sockets_per_user=_int(env, "MOODBOARD_MAX_SOCKETS_PER_USER", 50, 1, 100_000),
        max_connections=_int(env, "MOODBOARD_MAX_CONNECTIONS", 10_000, 1, 1_000_000),
        header_timeout_s=_int(env, "MOODBOARD_HEADER_TIMEOUT_MS", 10_000, 100, 600_000) / 1000,
        socket_rate=_int(env, "MOODBOARD_SOCKET_RATE", 50, 1, 100_000),
        socket_burst=_int(env, "MOODBOARD_SOCKET_BURST", 100, 1, 1_000_000),
        outbox_frames=_int(env, "MOODBOARD_OUTBOX_FRAMES", 1024, 8, 1_000_000),
        edit_batch=_int(env, "MOODBOARD_EDIT_BATCH", 64, 1, 1000),
        drain_window_s=_int(env, "MOODBOARD_DRAIN_WINDOW_MS", 5000, 0, 60_000) / 1000,
        presence_ttl_s=_int(env, "MOODBOARD_PRESENCE_TTL_S", 15, 2, 25),
        presence_flush_s=_int(env, "MOODBOARD_PRESENCE_FLUSH_MS", 50, 0, 5000) / 1000,
        write_delay_s=_int(env, "MOODBOARD_WRITE_DELAY_US", 2000, 0, 100_000) / 1_000_000,
        feed_heal_s=_int(env, "MOODBOARD_FEED_HEAL_MS", 2000, 100, 3_600_000) / 1000,
        access_check_s=_int(env, "MOODBOARD_ACCESS_CHECK_MS", 1000, 100, 600_000) / 1000,
        auth_timeout_s=_int(env, "MOODBOARD_AUTH_TIMEOUT_MS", 10_000, 100, 600_000) / 1000,
        event_retention_events=_int(env, "MOODBOARD_EVENT_RETENTION_EVENTS", 10_000, 0, 10**9),
        event_retention_days=_int(env, "MOODBOARD_EVENT_RETENTION_DAYS", 30, 0, 36_500),
        ended_retention_days=_int(env, "MOODBOARD_ENDED_RETENTION_DAYS", 7, 0, 36_500),
        purge_after_days=_int(env, "MOODBOARD_PURGE_AFTER_DAYS", 30, 0, 36_500),
        maintenance_interval_s=_int(env, "MOODBOARD_MAINTENANCE_INTERVAL_S", 3600, 0, 7 * 86_400),
        forwarded_allow_ips=env.get("MOODBOARD_FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1",
        fast_upgrade=_bool(env, "MOODBOARD_FAST_UPGRADE", True),
        metrics_token=_metrics_token(env),
        backup_dir=env.get("MOODBOARD_BACKUP_DIR", "").strip() or "./backups",
        backup_encrypt_to=env.get("MOODBOARD_BACKUP_ENCRYPT_TO", "").strip() or None,
        backup_keep_daily=_int(env, "MOODBOARD_BACKUP_KEEP_DAILY", 7, 0, 3660),
        backup_keep_weekly=_int(env, "MOODBOARD_BACKUP_KEEP_WEEKLY", 4, 0, 520),
    )
