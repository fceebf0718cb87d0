"""Settings: defaults for a newcomer, one clear error per bad variable (docs/protocol.md §1)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from server.redis_topology import parse_redis_url
from server.settings import SettingsError, load_settings

SECRET = "settings-test-" + hashlib.sha256(b"tests/test_settings.py").hexdigest()


def test_defaults_are_embedded_mode() -> None:
    """With nothing set, the server is embedded: SQLite file, in-process broker, worker on."""
    settings = load_settings({})
    assert settings.embedded
    assert settings.database.kind == "sqlite"
    assert settings.database.sqlite_path == "./moodboard.sqlite3"
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.allowed_origins == ()
    assert settings.secret_key_generated
    assert len(settings.secret_key) >= 32
    assert (settings.signup_credits, settings.generation_cost) == (100, 10)
    assert settings.inprocess_worker is True


def test_production_settings_are_read() -> None:
    """PostgreSQL + Redis with every variable set are taken as given."""
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://app:pw@db.internal:5433/moodboard",
            "REDIS_URL": "redis://cache:6379/2",
            "MOODBOARD_HOST": "0.0.0.0",
            "MOODBOARD_PORT": "9000",
            "MOODBOARD_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:3000/",
            "MOODBOARD_SECRET_KEY": SECRET,
            "MOODBOARD_SIGNUP_CREDITS": "5",
            "MOODBOARD_GENERATION_COST": "2",
        }
    )
    assert not settings.embedded
    assert settings.database.kind == "postgres"
    assert settings.database.redacted == "postgresql://app:***@db.internal:5433/moodboard"
    assert settings.redis_url == "redis://cache:6379/2"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.secret_key == SECRET
    assert not settings.secret_key_generated
    assert (settings.signup_credits, settings.generation_cost) == (5, 2)
    assert settings.inprocess_worker is False  # off outside embedded mode


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"DATABASE_URL": "mysql://localhost/db"}, "DATABASE_URL", "unsupported scheme"),
        ({"DATABASE_URL": "postgresql://localhost:notaport/db"}, "DATABASE_URL", "malformed"),
        ({"DATABASE_URL": "postgresql://localhost"}, "DATABASE_URL", "database name"),
        ({"DATABASE_URL": "postgresql:///db"}, "DATABASE_URL", "needs a host"),
        ({"DATABASE_URL": "sqlite://host/file.db"}, "DATABASE_URL", "no host"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL", "file path"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL", "unsupported scheme"),
        ({"REDIS_URL": "redis+cluster://a:7000,b"}, "REDIS_URL", "expected host:port"),
        ({"REDIS_URL": "redis+cluster://a:7000/1"}, "REDIS_URL", "one database"),
        ({"REDIS_URL": "redis+sentinel://s:26379"}, "REDIS_URL", "master's name"),
        ({"REDIS_URL": "redis+sentinel://s:26379/mb/x"}, "REDIS_URL", "must be a number"),
        ({"MOODBOARD_REDIS_PREFIX": "a{b}"}, "MOODBOARD_REDIS_PREFIX", "no braces"),
        ({"MOODBOARD_PORT": "eighty"}, "MOODBOARD_PORT", "expected an integer"),
        ({"MOODBOARD_PORT": "70000"}, "MOODBOARD_PORT", "out of range"),
        ({"MOODBOARD_SIGNUP_CREDITS": "-1"}, "MOODBOARD_SIGNUP_CREDITS", "out of range"),
        ({"MOODBOARD_GENERATION_COST": "1.5"}, "MOODBOARD_GENERATION_COST", "integer"),
        ({"MOODBOARD_INPROCESS_WORKER": "maybe"}, "MOODBOARD_INPROCESS_WORKER", "true/false"),
        ({"MOODBOARD_ALLOWED_ORIGINS": "example.com"}, "MOODBOARD_ALLOWED_ORIGINS", "origin"),
        ({"MOODBOARD_SECRET_KEY": "short"}, "MOODBOARD_SECRET_KEY", "at least 32"),
        ({"MOODBOARD_SECRET_KEY": "k" * 40}, "MOODBOARD_SECRET_KEY", "too predictable"),
        ({"REDIS_URL": "redis://cache:6379"}, "MOODBOARD_SECRET_KEY", "required outside"),
        ({"MOODBOARD_LOG_FORMAT": "xml"}, "MOODBOARD_LOG_FORMAT", "console or json"),
        (
            {"MOODBOARD_GENERATION_LEASE_SECONDS": "0"},
            "MOODBOARD_GENERATION_LEASE_SECONDS",
            "out of range",
        ),
        (
            {"MOODBOARD_GENERATION_MAX_ATTEMPTS": "x"},
            "MOODBOARD_GENERATION_MAX_ATTEMPTS",
            "integer",
        ),
        ({"MOODBOARD_WORKER_SERVER_URL": "ftp://h"}, "MOODBOARD_WORKER_SERVER_URL", "URL"),
        ({"MOODBOARD_WORKER_SERVER_URL": "http://a:1,,"}, "MOODBOARD_WORKER_SERVER_URL", "URL"),
        ({"MOODBOARD_WORKER_CONCURRENCY": "0"}, "MOODBOARD_WORKER_CONCURRENCY", "out of range"),
    ],
)
def test_invalid_values_name_the_variable(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    """Each invalid value raises an error naming its variable and what is wrong."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert fragment in str(caught.value)


def test_generation_and_worker_settings() -> None:
    """Lease, attempts, storage and worker settings have defaults and are read when set."""
    default = load_settings({})
    assert (default.generation_lease_s, default.generation_max_attempts) == (30, 3)
    assert default.worker_server_urls == ("http://127.0.0.1:8000",)
    assert default.worker_key is None
    settings = load_settings(
        {
            "MOODBOARD_GENERATION_LEASE_SECONDS": "5",
            "MOODBOARD_GENERATION_MAX_ATTEMPTS": "7",
            "MOODBOARD_STORAGE_DIR": "/srv/files",
            "MOODBOARD_WORKER_SERVER_URL": "https://mb.example.com/, http://10.0.0.2:8000",
            "MOODBOARD_WORKER_KEY": "mbk_x",
            "MOODBOARD_WORKER_CONCURRENCY": "4",
            "MOODBOARD_WORKER_POLL_MS": "250",
        }
    )
    assert (settings.generation_lease_s, settings.generation_max_attempts) == (5, 7)
    assert settings.storage_dir == "/srv/files"
    assert settings.worker_server_urls == ("https://mb.example.com", "http://10.0.0.2:8000")
    assert (settings.worker_key, settings.worker_concurrency) == ("mbk_x", 4)
    assert settings.worker_poll_s == 0.25


def test_sqlite_paths() -> None:
    """sqlite:///relative and sqlite:////absolute both give a file path."""
    assert load_settings({"DATABASE_URL": "sqlite:///data/m.db"}).database.sqlite_path == (
        "data/m.db"
    )
    assert load_settings({"DATABASE_URL": "sqlite:////var/m.db"}).database.sqlite_path == (
        "/var/m.db"
    )


def test_bad_setting_is_one_line_not_a_traceback() -> None:
    """The CLI prints one line naming the variable and exits 2, with no traceback."""
    env = {**os.environ, "DATABASE_URL": "postgresql://db:port/x"}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "moodboard: invalid setting DATABASE_URL: malformed URL "
        "(Port could not be cast to integer value as 'port')"
    ]
    assert "Traceback" not in result.stderr


def test_own_origins_are_the_public_url_or_the_bind_address() -> None:
    """MOODBOARD_PUBLIC_URL names the own origins; unset, the bind address's (loopback names)."""
    loopback = load_settings({"MOODBOARD_PORT": "8100"})
    assert loopback.own_origins == (
        "http://127.0.0.1:8100",
        "http://localhost:8100",
        "http://[::1]:8100",
    )
    everywhere = load_settings({"MOODBOARD_HOST": "0.0.0.0", "MOODBOARD_PORT": "80"})
    assert everywhere.own_origins == ("http://127.0.0.1", "http://localhost", "http://[::1]")
    lan = load_settings({"MOODBOARD_HOST": "192.168.1.9"})
    assert lan.own_origins == ("http://192.168.1.9:8000",)
    public = load_settings(
        {"MOODBOARD_PUBLIC_URL": "https://Mood.example.com:443/, http://10.0.0.5:8000"}
    )
    assert public.own_origins == ("https://mood.example.com", "http://10.0.0.5:8000")


def test_a_public_url_with_a_path_is_refused() -> None:
    """MOODBOARD_PUBLIC_URL takes origins only: a path or another scheme is a settings error."""
    for bad in ("https://mood.example.com/app", "ftp://mood.example.com", "mood.example.com"):
        with pytest.raises(SettingsError, match="MOODBOARD_PUBLIC_URL"):
            load_settings({"MOODBOARD_PUBLIC_URL": bad})


@pytest.mark.parametrize(
    "weak",
    ["a" * 32, "ab" * 16, "abcd" * 8, "e2e-secret-" + "x" * 32, "bench-" + "k" * 40],
)
def test_a_repetitive_secret_key_is_refused(weak: str) -> None:
    """A key of repeated characters is refused however long: it needs about 80 bits."""
    with pytest.raises(SettingsError, match="too predictable"):
        load_settings({"MOODBOARD_SECRET_KEY": weak})


def test_generated_secret_keys_pass() -> None:
    """Keys from the usual generators pass, the shortest (32 hex digits) included."""
    import secrets

    for _ in range(200):
        for key in (secrets.token_hex(16), secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert load_settings({"MOODBOARD_SECRET_KEY": key}).secret_key == key


OLD_KEY = "settings-old-" + hashlib.sha256(b"the key before the rotation").hexdigest()


def test_previous_secret_keys_verify_and_the_current_one_signs() -> None:
    """``MOODBOARD_SECRET_KEY_PREVIOUS`` (a comma list) adds keys for verification only: a
    cookie signed with one still opens, a new cookie is signed with the current key."""
    from server.access.cookies import sign, unsign

    settings = load_settings(
        {"MOODBOARD_SECRET_KEY": SECRET, "MOODBOARD_SECRET_KEY_PREVIOUS": f" {OLD_KEY} ,, "}
    )
    assert settings.verification_keys == (SECRET, OLD_KEY)
    old_cookie = sign("mbs_token", OLD_KEY)
    assert unsign(old_cookie, settings.verification_keys) == "mbs_token"
    assert unsign(old_cookie, (SECRET,)) is None  # once the old key is removed
    assert unsign(sign("mbs_token", SECRET), (SECRET,)) == "mbs_token"
    assert unsign(sign("mbs_token", "x" * 40), settings.verification_keys) is None


@pytest.mark.parametrize(
    ("previous", "current", "fragment"),
    [
        ("short", SECRET, "key 1: must be at least 32 characters"),
        (f"{OLD_KEY},{'k' * 40}", SECRET, "key 2: too predictable"),
        (SECRET, SECRET, "key 1 is MOODBOARD_SECRET_KEY itself"),
        (OLD_KEY, "", "needs MOODBOARD_SECRET_KEY"),
    ],
)
def test_a_previous_secret_key_gets_the_same_checks(
    previous: str, current: str, fragment: str
) -> None:
    """A guessable retired key would let anyone forge what it still verifies: refused, without
    echoing the key; a list without a current key is refused too."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"MOODBOARD_SECRET_KEY": current, "MOODBOARD_SECRET_KEY_PREVIOUS": previous})
    assert caught.value.variable == "MOODBOARD_SECRET_KEY_PREVIOUS"
    assert fragment in str(caught.value)
    assert previous.split(",")[-1] not in str(caught.value)


PG = "postgresql://mb:pw@db1:5432,db2:5433/moodboard?target_session_attrs=read-write"


def test_postgresql_topologies_are_read() -> None:
    """Several hosts, a direct LISTEN URL, a replica and the statement cache (issue 20)."""
    database = load_settings(
        {
            "DATABASE_URL": PG,
            "MOODBOARD_SECRET_KEY": SECRET,
            "MOODBOARD_DATABASE_LISTEN_URL": "postgresql://mb@db1:5432,db2:5433/moodboard",
            "MOODBOARD_DATABASE_REPLICA_URL": "postgresql://ro@db2:5433/moodboard",
            "MOODBOARD_DATABASE_STATEMENT_CACHE": "0",
        }
    ).database
    assert (database.url, database.statement_cache) == (PG, 0)
    assert database.session_url == "postgresql://mb@db1:5432,db2:5433/moodboard"
    assert database.direct.url == database.session_url
    assert database.direct.replica_url is None
    assert database.replica_url == "postgresql://ro@db2:5433/moodboard"
    assert database.redacted == PG.replace(":pw@", ":***@")
    alone = load_settings({"DATABASE_URL": PG, "MOODBOARD_SECRET_KEY": SECRET}).database
    assert (alone.session_url, alone.replica_url, alone.statement_cache) == (PG, None, 100)


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"DATABASE_URL": "postgresql://u@db1:5432,:5432/db"}, "DATABASE_URL", "empty host"),
        ({"DATABASE_URL": "postgresql://u@db1,db2:x/db"}, "DATABASE_URL", "malformed"),
        ({"DATABASE_URL": "postgresql://u@db1,db2:99999/db"}, "DATABASE_URL", "malformed"),
        (
            {"MOODBOARD_DATABASE_REPLICA_URL": "postgresql://u@db2/db"},
            "MOODBOARD_DATABASE_REPLICA_URL",
            "only with a postgresql://",
        ),
        (
            {"DATABASE_URL": "postgresql://u@db1/db", "MOODBOARD_DATABASE_LISTEN_URL": "redis://x"},
            "MOODBOARD_DATABASE_LISTEN_URL",
            "unsupported scheme",
        ),
        (
            {"DATABASE_URL": "postgresql://u@db1/db", "MOODBOARD_DATABASE_STATEMENT_CACHE": "-1"},
            "MOODBOARD_DATABASE_STATEMENT_CACHE",
            "out of range",
        ),
    ],
)
def test_bad_postgresql_topologies_name_the_variable(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**env, "MOODBOARD_SECRET_KEY": SECRET})
    assert caught.value.variable == variable
    assert fragment in str(caught.value)


def test_redis_topologies_and_the_prefix_are_read() -> None:
    """Both extra REDIS_URL forms parse; the prefix defaults to the database's name."""
    base = {"DATABASE_URL": "postgresql://app@db/moodboard_prod", "MOODBOARD_SECRET_KEY": SECRET}
    cluster = "redis+cluster://:pw@n1:7000,n2:7001"
    settings = load_settings({**base, "REDIS_URL": cluster})
    assert settings.redis_prefix == "mb:moodboard_prod:"
    topology = parse_redis_url(cluster)
    assert (topology.kind, topology.hosts, topology.password) == (
        "cluster",
        (("n1", 7000), ("n2", 7001)),
        "pw",
    )
    sentinel = parse_redis_url("redis+sentinel://s1:26379,s2:26380/mymaster/3")
    assert (sentinel.kind, sentinel.master_name, sentinel.db) == ("sentinel", "mymaster", 3)
    assert parse_redis_url("redis://cache:6379/2").kind == "single"
    explicit = load_settings({**base, "MOODBOARD_REDIS_PREFIX": "rehearsal"})
    assert explicit.redis_prefix == "rehearsal:"
    assert load_settings({}).redis_prefix == "mb:moodboard:"  # sqlite:///./moodboard.sqlite3
