"""Settings, read once from the environment (docs/protocol.md §1).

Nothing else in the code base reads ``os.environ``: the composition root calls
:func:`load_settings` once and hands the frozen result to whoever needs it.
Every invalid value raises :class:`SettingsError` naming the variable and what
is wrong with it, so an operator sees one line, not a traceback.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Literal
from urllib.parse import urlsplit

from server.redis_topology import RedisUrlError, check_prefix, default_prefix, parse_redis_url

DatabaseKind = Literal["postgres", "sqlite"]
LogFormat = Literal["console", "json"]

DEFAULT_DATABASE_URL = "sqlite:///./moodboard.sqlite3"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseUrl:
    """A parsed ``DATABASE_URL``: which engine, and how to reach it.

    On PostgreSQL also the connections beside the pool's (docs/operations.md
    "PostgreSQL beyond one server"):
    ``listen_url`` (``MOODBOARD_DATABASE_LISTEN_URL``) is a direct session
    for what a transaction-mode pooler cannot carry: LISTEN, the advisory
    locks of migrations and maintenance, and the migrations themselves;
    ``replica_url`` (``MOODBOARD_DATABASE_REPLICA_URL``) a read-only replica
    for snapshot, replay and history reads; ``statement_cache`` the asyncpg
    prepared-statement cache of each pool connection (0 behind a
    transaction-mode PgBouncer older than 1.21).
    """

    url: str
    kind: DatabaseKind
    sqlite_path: str | None = None
    listen_url: str | None = None
    replica_url: str | None = None
    statement_cache: int = 100

    @property
    def session_url(self) -> str:
        """The URL of a direct session: ``listen_url``, else ``url`` itself."""
        return self.listen_url or self.url

    @property
    def direct(self) -> DatabaseUrl:
        """This database reached through its direct session URL (migrations run there)."""
        return replace(self, url=self.session_url, listen_url=None, replica_url=None)

    @property
    def redacted(self) -> str:
        """The URL with any password replaced, safe to log."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with any password replaced, safe to log."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return url
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()


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


def parse_database_url(value: str, variable: str = "DATABASE_URL") -> DatabaseUrl:
    """Parse and check a database URL.

    Args:
        value: ``postgresql://user@host:port/db`` or ``sqlite:///path``.
        variable: the variable name to put in error messages.

    Raises:
        SettingsError: the URL cannot be used, with the reason.
    """
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise SettingsError(variable, f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        hosts = _postgres_hosts(parts.netloc, variable)
        if not hosts and "host=" not in parts.query:
            raise SettingsError(variable, "a postgresql:// URL needs a host")
        if not parts.path.strip("/"):
            raise SettingsError(variable, "a postgresql:// URL needs a database name")
        return DatabaseUrl(url=value, kind="postgres")
    try:
        _ = parts.port
    except ValueError as exc:
        raise SettingsError(variable, f"malformed URL ({exc})") from None
    if scheme == "sqlite":
        if parts.netloc:
            raise SettingsError(
                variable, "use sqlite:///relative/path or sqlite:////absolute/path (no host)"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise SettingsError(variable, "a sqlite:/// URL needs a file path")
        return DatabaseUrl(url=value, kind="sqlite", sqlite_path=path)
    raise SettingsError(
        variable,
        f"unsupported scheme {parts.scheme!r}: expected postgresql:// or sqlite:///",
    )


def _postgres_hosts(netloc: str, variable: str) -> list[str]:
    """The ``host[:port]`` entries of a PostgreSQL URL's comma list of hosts, each checked.

    libpq and asyncpg take several (``h1:5432,h2:5432``) and, with
    ``target_session_attrs=read-write``, connect to the one that is writable.
    """
    hosts = netloc.rpartition("@")[2]
    if not hosts:
        return []
    entries = hosts.split(",")
    for entry in entries:
        try:
            port = urlsplit(f"//{entry}").port
        except ValueError as exc:
            raise SettingsError(variable, f"malformed URL ({exc})") from None
        if not urlsplit(f"//{entry}").hostname:
            raise SettingsError(variable, f"an empty host in the list {hosts!r}")
        if port is not None and not 0 < port < 65536:
            raise SettingsError(variable, f"port {port} is out of range")
    return entries


def _postgres_beside(env: Mapping[str, str], variable: str, database: DatabaseUrl) -> str | None:
    """A second PostgreSQL URL (listen, replica): only beside a PostgreSQL ``DATABASE_URL``."""
    raw = env.get(variable, "").strip()
    if not raw:
        return None
    if database.kind != "postgres":
        raise SettingsError(variable, "only with a postgresql:// DATABASE_URL")
    if parse_database_url(raw, variable).kind != "postgres":
        raise SettingsError(variable, "expected a postgresql:// URL")
    return raw


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


def database_name(database: DatabaseUrl) -> str:
    """The database's name: the URL's path (PostgreSQL), the file's stem (SQLite)."""
    if database.sqlite_path is not None:
        return PurePath(database.sqlite_path).stem
    return urlsplit(database.url).path.strip("/") or "postgres"


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


# The least a secret key must carry by estimated_entropy_bits: "k" * 40 has 0 bits,
# "e2e-secret-" + "x" * 32 about 63; 32 random hex digits (128 real bits) never
# estimate below ~90, secrets.token_urlsafe(32) about 210.
MIN_SECRET_BITS = 80


def estimated_entropy_bits(value: str) -> float:
    """Length times the Shannon entropy of the value's own character frequencies.

    A cheap bound on how guessable a key is that catches repetition (one
    character, a short pattern, a long run); it cannot know that a varied
    but well-known phrase is guessable.
    """
    counts = Counter(value)
    return -sum(n * math.log2(n / len(value)) for n in counts.values())


_GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _check_secret_key(variable: str, key: str) -> None:
    """Refuse a key shorter than 32 characters or too predictable to sign with."""
    if len(key) < 32:
        raise SettingsError(variable, "must be at least 32 characters")
    if estimated_entropy_bits(key) < MIN_SECRET_BITS:
        raise SettingsError(
            variable,
            f"too predictable (repeated characters: about {estimated_entropy_bits(key):.0f} "
            f"bits, {MIN_SECRET_BITS} needed); generate one with: {_GENERATE_KEY}",
        )


def _previous_secret_keys(env: Mapping[str, str], current: str) -> tuple[str, ...]:
    """``MOODBOARD_SECRET_KEY_PREVIOUS``: keys a rotation retired, still accepted to verify.

    Each must pass the same checks as the current key (a guessable old key
    would let anyone forge what it verifies), and the list needs a current key.
    """
    variable = "MOODBOARD_SECRET_KEY_PREVIOUS"
    keys = tuple(k.strip() for k in env.get(variable, "").split(",") if k.strip())
    if keys and not current:
        raise SettingsError(variable, "needs MOODBOARD_SECRET_KEY (the key that signs now)")
    for number, key in enumerate(keys, 1):
        try:
            _check_secret_key(variable, key)
        except SettingsError as exc:
            raise SettingsError(variable, f"key {number}: {exc.problem}") from None
        if key == current:
            raise SettingsError(variable, f"key {number} is MOODBOARD_SECRET_KEY itself")
    return tuple(dict.fromkeys(keys))


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
            listen_url=_postgres_beside(env, "MOODBOARD_DATABASE_LISTEN_URL", database),
            replica_url=_postgres_beside(env, "MOODBOARD_DATABASE_REPLICA_URL", database),
            statement_cache=_int(env, "MOODBOARD_DATABASE_STATEMENT_CACHE", 100, 0, 100_000),
        )
    else:
        for variable in ("MOODBOARD_DATABASE_LISTEN_URL", "MOODBOARD_DATABASE_REPLICA_URL"):
            _postgres_beside(env, variable, database)
    redis_raw = env.get("REDIS_URL", "").strip()
    redis_url = _redis_url(redis_raw) if redis_raw else None
    embedded = database.kind == "sqlite" and redis_url is None

    secret = env.get("MOODBOARD_SECRET_KEY", "").strip()
    if secret:
        _check_secret_key("MOODBOARD_SECRET_KEY", secret)
    if not secret and not embedded:
        raise SettingsError(
            "MOODBOARD_SECRET_KEY",
            "required outside embedded mode (PostgreSQL or Redis configured); "
            f"generate one with: {_GENERATE_KEY}",
        )
    previous = _previous_secret_keys(env, secret)

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
