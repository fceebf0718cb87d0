"""``DATABASE_URL`` and the PostgreSQL URLs beside it, parsed and checked (docs/protocol.md §1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Literal
from urllib.parse import urlsplit

from server.settings.errors import SettingsError

DatabaseKind = Literal["postgres", "sqlite"]


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


def postgres_beside(env: Mapping[str, str], variable: str, database: DatabaseUrl) -> str | None:
    """A second PostgreSQL URL (listen, replica): only beside a PostgreSQL ``DATABASE_URL``."""
    raw = env.get(variable, "").strip()
    if not raw:
        return None
    if database.kind != "postgres":
        raise SettingsError(variable, "only with a postgresql:// DATABASE_URL")
    if parse_database_url(raw, variable).kind != "postgres":
        raise SettingsError(variable, "expected a postgresql:// URL")
    return raw


def database_name(database: DatabaseUrl) -> str:
    """The database's name: the URL's path (PostgreSQL), the file's stem (SQLite)."""
    if database.sqlite_path is not None:
        return PurePath(database.sqlite_path).stem
    return urlsplit(database.url).path.strip("/") or "postgres"
