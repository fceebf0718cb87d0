"""The ``moodboard`` command: serve, migrate, worker, create-admin, create-service-account,
rotate-service-account, revoke-service-account, maintenance, backup, restore.

docs/protocol.md §1; the operator's side is in docs/operations.md.

Every command reads the settings once; an invalid setting ends the command
with one line naming the variable (exit status 2), never a traceback.

Only ``migrate`` and ``serve`` (unless ``--no-migrate``) change the schema.
The console commands that write (``create-admin``, the service-account ones)
refuse a database with pending migrations (exit status 3) unless given
``--migrate``, and so does ``serve --no-migrate``: migrating is a release
step the operator takes after a backup (docs/operations.md "Upgrades and
rollbacks"), never a side effect.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from server.log import configure_logging, get_logger
from server.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from server.db.database import Database

log = get_logger("server.cli")
EXIT_BAD_SETTINGS = 2
EXIT_PENDING_MIGRATIONS = 3
MAX_WORKER_ID = 100  # the queue keeps 128; each slot appends "/<n>"


async def _schema_refusal(settings: Settings, args: argparse.Namespace) -> int | None:
    """None when the command may go on: ``--migrate`` applied the pending migrations, or none
    were pending; else the exit status, after one line saying what to do."""
    from server.db.migrate import log_if_newer, migrate, schema_state

    if getattr(args, "migrate", False):
        await migrate(settings.database)
        return None
    state = await schema_state(settings.database)
    log_if_newer(state)
    pending = state.pending
    if not pending:
        return None
    named = ", ".join(pending) if len(pending) <= 3 else f"{pending[0]} ... {pending[-1]}"
    how = "pass --migrate" if hasattr(args, "migrate") else "start it without --no-migrate"
    print(
        f"moodboard {args.command}: the database has {len(pending)} pending migration(s) "
        f"({named}); nothing was done. Back the database up and run "
        f"`moodboard migrate` first (docs/operations.md, Upgrades and rollbacks), "
        f"or {how}",
        file=sys.stderr,
    )
    return EXIT_PENDING_MIGRATIONS


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from server.db.migrate import migrate
    from server.transport.serve import run_server

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    # The default own origins (Settings.own_origins) are those of the address served.
    settings = dataclasses.replace(settings, host=host, port=port)
    if settings.secret_key_generated:
        log.warning(
            "settings.secret_key_generated",
            detail="MOODBOARD_SECRET_KEY is not set: sessions signed with it "
            "will not survive a restart (fine in embedded mode)",
        )
    if not args.no_migrate:
        asyncio.run(migrate(settings.database))
    elif (refusal := asyncio.run(_schema_refusal(settings, args))) is not None:
        return refusal  # new code on an old schema fails in ways no one should debug live
    run_server(settings, host=host, port=port)
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from server.db.migrate import migrate

    asyncio.run(migrate(settings.database))
    return 0


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from server.access.users import create_or_promote_admin
    from server.db.database import Database
    from server.errors import ServerError

    async def run() -> int:
        if (refusal := await _schema_refusal(settings, args)) is not None:
            return refusal
        async with Database.of(settings.database, pool_size=1) as database:
            try:
                user = await create_or_promote_admin(
                    database.engine,
                    email=args.email,
                    password=args.password,
                    signup_credits=settings.signup_credits,
                )
            except ServerError as exc:
                print(f"moodboard create-admin: {exc.detail}", file=sys.stderr)
                return 1
        verb = "created" if user.created else "promoted existing user"
        print(f"admin {verb}: {user.email} ({user.id})")
        return 0

    return asyncio.run(run())


def _on_service_account(
    settings: Settings,
    args: argparse.Namespace,
    command: str,
    action: Callable[[Database, uuid.UUID], Awaitable[list[str]]],
) -> int:
    """Run ``action`` on the service account ``args.id``; print its lines, or the refusal."""
    from server.db.database import Database
    from server.errors import ServerError

    try:
        account_id = uuid.UUID(args.id)
    except ValueError:
        print(f"moodboard {command}: not an id: {args.id!r}", file=sys.stderr)
        return 1

    async def run() -> int:
        if (refusal := await _schema_refusal(settings, args)) is not None:
            return refusal
        async with Database.of(settings.database, pool_size=1) as database:
            try:
                lines = await action(database, account_id)
            except ServerError as exc:
                print(f"moodboard {command}: {exc.detail}", file=sys.stderr)
                return 1
        print("\n".join(lines))
        return 0

    return asyncio.run(run())


def _revoke_service_account(settings: Settings, args: argparse.Namespace) -> int:
    from server.access.admin import end_service_account

    async def revoke(database: Database, account_id: uuid.UUID) -> list[str]:
        await end_service_account(database.engine, account_id, revoked_by=None, ip=None)
        return [f"service account {account_id} revoked"]

    return _on_service_account(settings, args, "revoke-service-account", revoke)


def _rotate_service_account(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from server.access.service_keys import rotate_key

    async def rotate(database: Database, account_id: uuid.UUID) -> list[str]:
        grace = timedelta(hours=args.grace_hours)
        rotated = await rotate_key(database.engine, account_id, grace=grace, by=None, ip=None)
        until = rotated["previous_key_expires_at"]
        return [
            f"service account {rotated['name']} ({account_id}): new key issued",
            f"key (shown once; give it to the workers as MOODBOARD_WORKER_KEY): {rotated['key']}",
            f"the old key works until {until.isoformat()}" if until else "the old key is ended",
        ]

    return _on_service_account(settings, args, "rotate-service-account", rotate)


def _grace_hours(value: str) -> int:
    try:
        hours = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if not 0 <= hours <= 720:
        raise argparse.ArgumentTypeError(f"{hours} is not in 0..720")
    return hours


def _create_service_account(settings: Settings, args: argparse.Namespace) -> int:
    from server.access.admin import new_service_account
    from server.db.database import Database
    from server.errors import ServerError

    async def run() -> int:
        if (refusal := await _schema_refusal(settings, args)) is not None:
            return refusal
        async with Database.of(settings.database, pool_size=1) as database:
            try:
                created = await new_service_account(
                    database.engine, name=args.name, created_by=None, ip=None
                )
            except ServerError as exc:
                print(f"moodboard create-service-account: {exc.detail}", file=sys.stderr)
                return 1
        print(f"service account {created['name']} ({created['id']})")
        print(f"key (shown once; give it to the worker as MOODBOARD_WORKER_KEY): {created['key']}")
        return 0

    return asyncio.run(run())


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.generations.run import run_worker

    key = args.key or settings.worker_key
    if not key:
        print(
            "moodboard worker: set MOODBOARD_WORKER_KEY to a service-account key "
            "(moodboard create-service-account --name worker)",
            file=sys.stderr,
        )
        return EXIT_BAD_SETTINGS
    if args.worker_id is not None and not 0 < len(args.worker_id) <= MAX_WORKER_ID:
        print(
            f"moodboard worker: --worker-id must be 1..{MAX_WORKER_ID} characters", file=sys.stderr
        )
        return EXIT_BAD_SETTINGS
    return run_worker(
        settings,
        server_urls=(
            tuple(url.strip().rstrip("/") for url in args.server.split(","))
            if args.server
            else settings.worker_server_urls
        ),
        key=key,
        concurrency=args.concurrency or settings.worker_concurrency,
        worker_id=args.worker_id,
    )


def _maintenance(settings: Settings, args: argparse.Namespace) -> int:
    import dataclasses

    from server.db.database import Database
    from server.ops.maintenance import run_once
    from server.redis_topology import parse_redis_url, redis_client

    async def run() -> int:
        database = Database.of(settings.database, pool_size=2)
        topology = parse_redis_url(settings.redis_url) if settings.redis_url else None
        redis = redis_client(topology, pool_size=2)
        try:
            async with database:
                policy = settings.maintenance_policy
                if args.purge_after_days is not None:
                    policy = dataclasses.replace(policy, purge_after_days=args.purge_after_days)
                report = await run_once(
                    database.engine, policy, redis=redis, redis_prefix=settings.redis_prefix
                )
        finally:
            if redis is not None:
                await redis.aclose()
        if report is None:
            print("maintenance: another instance is running it now; nothing done")
        else:
            print(f"maintenance: {report.summary()}")
        return 0

    return asyncio.run(run())


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from server.ops.backup import BackupError, prune_backups, take_backup, write_textfile

    directory = Path(args.dir or settings.backup_dir)
    keep_daily = settings.backup_keep_daily if args.keep_daily is None else args.keep_daily
    keep_weekly = settings.backup_keep_weekly if args.keep_weekly is None else args.keep_weekly
    encrypt_to = args.encrypt_to or settings.backup_encrypt_to
    try:
        backup = take_backup(
            settings.database, directory, pg_bin=args.pg_bin, encrypt_to=encrypt_to
        )
    except BackupError as exc:
        print(f"moodboard backup: FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup written and verified: {backup.path} ({backup.path.stat().st_size} bytes"
        f"{', encrypted' if backup.encrypted else ''})"
    )
    if args.metrics_file:
        write_textfile(Path(args.metrics_file), backup)
    for removed in prune_backups(directory, keep_daily=keep_daily, keep_weekly=keep_weekly):
        print(f"backup pruned: {removed.path}")
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from server.ops.backup import BackupError, restore

    try:
        restore(settings.database, Path(args.file), pg_bin=args.pg_bin)
    except BackupError as exc:
        print(f"moodboard restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into {settings.database.redacted}")
    return 0


def _days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not 0 <= number <= 36_500:
        raise argparse.ArgumentTypeError(f"{value} is not in 0..36500")
    return number


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError(f"{value} is not in 1..256")
    return number


def _migrate_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--migrate",
        action="store_true",
        help="apply pending migrations first (without it, pending migrations stop the "
        "command with exit status 3: migrate as a release step)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``moodboard`` command."""
    parser = argparse.ArgumentParser(
        prog="moodboard",
        description="Moodboard Realtime: the real-time collaboration server. "
        "Configuration comes from the environment (see docs/operations.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="apply pending migrations, then serve HTTP and WebSocket"
    )
    serve.add_argument("--host", help="bind address (default: MOODBOARD_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="bind port (default: MOODBOARD_PORT or 8000; 0 picks one)"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply pending migrations first; refuse to start (exit 3) if any are "
        "pending (migrate as a release step: moodboard migrate)",
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply pending migrations and exit")
    migrate.set_defaults(handler=_migrate)

    admin = commands.add_parser(
        "create-admin", help="create a platform admin, or promote the user with that email"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True, help="used only when the user is new")
    _migrate_flag(admin)
    admin.set_defaults(handler=_create_admin)
    service = commands.add_parser(
        "create-service-account",
        help="create a service account for a generation worker; prints its key once",
    )
    service.add_argument("--name", required=True)
    _migrate_flag(service)
    service.set_defaults(handler=_create_service_account)

    revoke = commands.add_parser(
        "revoke-service-account",
        help="revoke a service account's key for good: its next call is refused",
    )
    revoke.add_argument("--id", required=True, help="the service account's id")
    _migrate_flag(revoke)
    revoke.set_defaults(handler=_revoke_service_account)

    rotate = commands.add_parser(
        "rotate-service-account",
        help="issue a new key for a service account (printed once); the old key keeps "
        "working for --grace-hours, so workers can be switched one by one",
    )
    rotate.add_argument("--id", required=True, help="the service account's id")
    rotate.add_argument(
        "--grace-hours",
        type=_grace_hours,
        default=24,
        help="how long the old key keeps working, 0..720 (default 24; 0: it stops now)",
    )
    _migrate_flag(rotate)
    rotate.set_defaults(handler=_rotate_service_account)

    worker = commands.add_parser(
        "worker",
        help="run a generation worker: claim, generate (built-in SVG generator), report",
    )
    worker.add_argument(
        "--server",
        help="the load balancer's base URL, or a comma list of instances "
        "(default: MOODBOARD_WORKER_SERVER_URL)",
    )
    worker.add_argument(
        "--key", help="service-account key (default: MOODBOARD_WORKER_KEY; prefer the variable)"
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        help="jobs at once, 1..256 (default: MOODBOARD_WORKER_CONCURRENCY)",
    )
    worker.add_argument("--worker-id", help="name in the queue (default: host:pid)")
    worker.set_defaults(handler=_worker)

    maintenance = commands.add_parser(
        "maintenance",
        help="run the maintenance jobs once: prune the event log (keeps "
        "MOODBOARD_EVENT_RETENTION_EVENTS per project and everything younger than "
        "MOODBOARD_EVENT_RETENTION_DAYS), delete sessions and invitations that ended more than "
        "MOODBOARD_ENDED_RETENTION_DAYS ago and dead instances' presence, purge projects deleted "
        "and erased accounts' sessions older than MOODBOARD_PURGE_AFTER_DAYS, refresh statistics",
    )
    maintenance.add_argument(
        "--purge-after-days",
        type=_days,
        help="this run only: purge what was deleted more than N days ago (0: everything "
        "deleted so far; default MOODBOARD_PURGE_AFTER_DAYS)",
    )
    maintenance.set_defaults(handler=_maintenance)

    backup = commands.add_parser(
        "backup",
        help="write a backup of the database (pg_dump custom format, or a SQLite copy) "
        "into a directory, then delete the backups the retention policy does not keep",
    )
    backup.add_argument("--dir", help="backup directory (default: MOODBOARD_BACKUP_DIR)")
    backup.add_argument(
        "--keep-daily",
        type=int,
        help="keep the newest backup of each of the last N days (MOODBOARD_BACKUP_KEEP_DAILY)",
    )
    backup.add_argument(
        "--keep-weekly",
        type=int,
        help="keep the newest backup of each of the last N weeks (MOODBOARD_BACKUP_KEEP_WEEKLY)",
    )
    backup.add_argument(
        "--pg-bin", help="directory of pg_dump and pg_restore (default: found on PATH)"
    )
    backup.add_argument(
        "--encrypt-to",
        help="encrypt the backup with age to this public key (age1..., an SSH public key) or "
        "file of keys; the file gets .age (MOODBOARD_BACKUP_ENCRYPT_TO)",
    )
    backup.add_argument(
        "--metrics-file",
        help="after a verified backup, write moodboard_backup_last_success_timestamp to this "
        "file (node_exporter's textfile collector: a *.prom file in its directory)",
    )
    backup.set_defaults(handler=_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a backup into DATABASE_URL, which must be an empty database "
        "(PostgreSQL) or a file that does not exist yet (SQLite)",
    )
    restore.add_argument("file", help="a file written by moodboard backup")
    restore.add_argument("--pg-bin", help="directory of pg_restore (default: found on PATH)")
    restore.set_defaults(handler=_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``moodboard`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"moodboard: invalid setting {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(settings.log_format, settings.log_level)
    handler = args.handler
    result: int = handler(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
