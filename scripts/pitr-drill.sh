#!/usr/bin/env bash
# Point-in-time recovery drill (docs/operations.md "Point-in-time recovery").
#
# On a throwaway local PostgreSQL cluster (a temp directory, a free port, a
# Unix socket in that directory: nothing touches your real server):
#   1. initdb with WAL archiving on (basic_archive copies to ./archive, fsynced);
#   2. write rows "before", take a base backup (pg_basebackup);
#   3. write rows "kept", note the time T, write rows "lost";
#   4. restore the base backup into a new data directory with
#      restore_command + recovery_target_time = T, start it, let it promote;
#   5. verify: "before" and "kept" rows are there, "lost" rows are not.
# Exit status 0 when the recovered cluster holds exactly what it should.
#
# Usage: scripts/pitr-drill.sh          (PGBIN defaults to /usr/lib/postgresql/15/bin)
# initdb refuses to run as root: as root the cluster runs as the "postgres" user.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
started=$(date +%s.%N)
say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S.%3N)" "$*"; }

if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_pg() { "$@"; }
    owner=$(id -un)
fi

work=$(mktemp -d /tmp/pitr-drill.XXXXXX)
chown "$owner" "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
primary_port=$(free_port)
restored_port=$(free_port)

cleanup() {
    for dir in "$work/primary" "$work/restored"; do
        if [ -f "$dir/postmaster.pid" ]; then
            as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

sql() {  # sql PORT "statement": one value, unaligned
    as_pg "$PGBIN/psql" -X -q -h "$work" -p "$1" -U postgres -d drill -At -v ON_ERROR_STOP=1 -c "$2"
}

say "work directory $work, primary on port $primary_port"
as_pg mkdir "$work/archive"
as_pg "$PGBIN/initdb" -D "$work/primary" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_pg tee -a "$work/primary/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $primary_port
wal_level = replica
archive_mode = on
archive_library = 'basic_archive'   # copy, fsync, rename (cp alone does not fsync)
basic_archive.archive_directory = '$work/archive'
CONF
as_pg "$PGBIN/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w start >/dev/null
as_pg "$PGBIN/createdb" -h "$work" -p "$primary_port" -U postgres drill
sql "$primary_port" "CREATE TABLE drill (id serial PRIMARY KEY, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
sql "$primary_port" "INSERT INTO drill (phase) SELECT 'before' FROM generate_series(1, 100)"
say "100 rows 'before' written; taking the base backup"

as_pg "$PGBIN/pg_basebackup" -h "$work" -p "$primary_port" -U postgres -D "$work/base" -X stream --checkpoint=fast --no-sync
say "base backup done ($(du -sh "$work/base" | cut -f1))"

sql "$primary_port" "INSERT INTO drill (phase) SELECT 'kept' FROM generate_series(1, 50)"
sleep 0.2
target=$(sql "$primary_port" "SELECT clock_timestamp()")
say "50 rows 'kept' written; recovery target time T = $target"
sleep 0.2
sql "$primary_port" "INSERT INTO drill (phase) SELECT 'lost' FROM generate_series(1, 25)"
wal=$(sql "$primary_port" "SELECT pg_walfile_name(pg_switch_wal())")
say "25 rows 'lost' written after T; WAL switched ($wal), waiting for the archiver"
for _ in $(seq 1 100); do
    [ -f "$work/archive/$wal" ] && break
    sleep 0.1
done
[ -f "$work/archive/$wal" ] || { say "FAIL: $wal was never archived"; exit 1; }
say "archived: $(ls "$work/archive" | wc -l) WAL files"

say "disaster: the primary is stopped; restoring the base backup to T"
as_pg "$PGBIN/pg_ctl" -D "$work/primary" -m fast -w stop >/dev/null
as_pg cp -a "$work/base" "$work/restored"
as_pg tee -a "$work/restored/postgresql.conf" >/dev/null <<CONF
port = $restored_port
archive_mode = off
restore_command = 'cp $work/archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
CONF
as_pg touch "$work/restored/recovery.signal"
as_pg "$PGBIN/pg_ctl" -D "$work/restored" -l "$work/restored.log" -w start >/dev/null
for _ in $(seq 1 300); do
    [ "$(sql "$restored_port" "SELECT pg_is_in_recovery()" 2>/dev/null)" = "f" ] && break
    sleep 0.1
done
say "restored cluster promoted on port $restored_port"
grep -E "recovery stopping|starting point-in-time recovery|selected new timeline" "$work/restored.log" \
    | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] /    log: /' || true

counts=$(sql "$restored_port" "SELECT string_agg(phase || '=' || n, ' ' ORDER BY phase) FROM (SELECT phase, count(*) AS n FROM drill GROUP BY phase) c")
say "rows by phase after recovery: $counts"
elapsed=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
if [ "$counts" = "before=100 kept=50" ]; then
    say "PASS: everything committed before T is back, nothing after it (${elapsed} s)"
else
    say "FAIL: expected 'before=100 kept=50' (${elapsed} s)"
    exit 1
fi
