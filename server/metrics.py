"""Every Prometheus series the server exports (``GET /metrics``; docs/operations.md).

One module defines them all; the code that sees a thing happen calls one
function or one ``.inc()`` here. Labels are bounded sets (frame types, close
codes, outcomes, status codes): never a user, project or connection id.

One ``moodboard serve`` is one process (server/transport/serve.py runs a single uvicorn
worker), so the default in-process registry is right: to use more cores, run
more instances and scrape each of them (docs/architecture.md §8).

Counters count what happened on *this* instance since it started; Prometheus'
``rate()``/``increase()`` and ``sum by`` across instances do the rest. Gauges
read from the database (the generation queue) are refreshed when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "render"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

# --- HTTP --------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "moodboard_http_requests", "HTTP requests answered, by method and status", ["method", "status"]
)
HTTP_SECONDS = Histogram(
    "moodboard_http_request_seconds", "HTTP request duration", buckets=_LATENCY_BUCKETS
)

# --- sockets -----------------------------------------------------------------------------
OPEN_SOCKETS = Gauge("moodboard_ws_open_sockets", "WebSocket connections open now")
JOINS = Counter("moodboard_ws_joins", "Project joins answered, by mode", ["mode"])
FRAMES_IN = Counter("moodboard_ws_frames_received", "Client frames received, by type", ["type"])
FRAMES_OUT = Counter("moodboard_ws_frames_sent", "Frames queued to clients, by type", ["type"])
CLOSES = Counter(
    "moodboard_ws_closes",
    "Sockets the server closed, by close code (4503: too slow to keep up)",
    ["code"],
)
CLOSES_ABORTED = Counter(
    "moodboard_ws_closes_aborted",
    "Sockets aborted because their close frame could not be written in time (peer not reading)",
)
ACCESS_CHECK_REVOCATIONS = Counter(
    "moodboard_access_check_revocations",
    "Sockets the periodic access check ended (session) or took out of a project (project): "
    "what a lost control message would otherwise have left open",
    ["what"],
)
FANOUT_SECONDS = Histogram(
    "moodboard_fanout_seconds",
    "Committed event: publish on the bus -> its arrival here, handed to the local sockets' "
    "outboxes (an instance's own events reach its sockets at commit: for those, the bus's "
    "round trip)",
    buckets=_LATENCY_BUCKETS,
)
GAP_FILLS = Counter(
    "moodboard_feed_gap_fills", "Events read from the log because the bus missed them"
)
FEED_LAG = Gauge(
    "moodboard_feed_lag_events",
    "Largest distance between a followed project's log head and what this instance "
    "delivered, at the last heal pass (every 2 s)",
)

# --- writes ------------------------------------------------------------------------------
EDITS = Counter(
    "moodboard_edits",
    "Edits answered (socket and REST), by outcome: applied, merged (stale base, "
    "no overlap), conflict",
    ["outcome"],
)
EDIT_BATCH = Histogram(
    "moodboard_edit_batch_size",
    "Socket edits of one project written by one database call and commit (a busy "
    "project's edits that waited for its previous call go together)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
EVENTS = Counter(
    "moodboard_events_committed", "Events committed by this instance, by entity", ["entity"]
)

# --- access ------------------------------------------------------------------------------
AUTH_FAILURES = Counter(
    "moodboard_auth_failures",
    "Failed authentications, by kind: password (login), token (session token on "
    "REST or socket), service_key (worker API)",
    ["kind"],
)
AUTH_RETIRED_KEY = Counter(
    "moodboard_auth_retired_key",
    "Authentications that verified with a key a rotation retired, by kind: cookie (signed "
    "with a MOODBOARD_SECRET_KEY_PREVIOUS key), service_key (a service account's previous "
    "key, in its grace period); once it stops growing on every instance the old key can go",
    ["kind"],
)
RATE_LIMITED = Counter(
    "moodboard_rate_limited",
    "Requests refused by a rate limit, by scope: login, signup, socket",
    ["scope"],
)

# --- infrastructure ----------------------------------------------------------------------
BUS_RECONNECTS = Counter("moodboard_bus_reconnects", "Redis pub/sub reconnections")
LISTEN_RECONNECTS = Counter(
    "moodboard_listen_reconnects", "PostgreSQL LISTEN connection re-established"
)
BUS_PUBLISH_FAILURES = Counter(
    "moodboard_bus_publish_failures", "Bus publishes that failed (events heal from the log)"
)
DB_QUERY_SECONDS = Histogram(
    "moodboard_db_query_seconds",
    "PostgreSQL statement duration, by statement kind",
    ["statement"],
    buckets=_LATENCY_BUCKETS,
)
READ_BATCH = Histogram(
    "moodboard_read_batch_size",
    "Reads answered by one database statement, by read: session (authenticate: every "
    "socket and request), resume (role and replay of a join with last_seq); the reads "
    "that waited for the previous statement go together",
    ["read"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
REPLICA_READS = Counter(
    "moodboard_replica_reads",
    "Snapshot, replay and history reads with MOODBOARD_DATABASE_REPLICA_URL set, by read and "
    "by who answered: replica, or primary (the replica was behind what the reader must see, "
    "or did not answer)",
    ["read", "source"],
)
DB_POOL_SIZE = Gauge("moodboard_db_pool_connections", "PostgreSQL pool connections open")
DB_POOL_IDLE = Gauge("moodboard_db_pool_idle", "PostgreSQL pool connections idle")
DB_POOL_MAX = Gauge("moodboard_db_pool_max", "PostgreSQL pool size limit")
TRANSPORT_FAST_PATH = Gauge(
    "moodboard_transport_fast_path",
    "Transport fast paths a probe socket took at startup (1) or not (0), by path: "
    "direct_write (frames straight to the socket), fast_upgrade (the handshake parsed "
    "once); 0 after a library upgrade means it silently turned off (server/transport/)",
    ["path"],
)

# --- generations and credits -------------------------------------------------------------
GENERATIONS_WAITING = Gauge(
    "moodboard_generations", "Generations not finished, by status (read at scrape)", ["status"]
)
GENERATION_OLDEST_QUEUED = Gauge(
    "moodboard_generation_oldest_queued_seconds",
    "Age of the oldest queued generation (0 when none; read at scrape)",
)
GENERATION_OUTCOMES = Counter(
    "moodboard_generation_outcomes", "Generations finished, by status", ["status"]
)
GENERATION_WAIT = Histogram(
    "moodboard_generation_wait_seconds",
    "Queue wait of finished generations (created -> started)",
    buckets=_JOB_BUCKETS,
)
GENERATION_RUN = Histogram(
    "moodboard_generation_run_seconds",
    "Run time of finished generations (started -> finished)",
    buckets=_JOB_BUCKETS,
)
CREDITS = Counter(
    "moodboard_credits",
    "Credits moved, by reason: reserved, refunded (generations), granted, taken (admin), other",
    ["reason"],
)

# --- maintenance, backups, the process ---------------------------------------------------
MAINTENANCE_DELETED = Counter(
    "moodboard_maintenance_deleted_rows",
    "Rows the maintenance jobs of this instance deleted, by job: events, operations (op "
    "outcomes), sessions, invitations (ended ones), purge (every row of purged projects and "
    "erased accounts' sessions)",
    ["job"],
)
PURGED_PROJECTS = Counter(
    "moodboard_purged_projects", "Deleted projects purged for good (rows and stored files)"
)
PURGED_FILES = Counter("moodboard_purged_files", "Stored files removed by the purge")
MAINTENANCE_LAST_SUCCESS = Gauge(
    "moodboard_maintenance_last_success_timestamp",
    "Unix time this instance last finished a maintenance round (0: none since it started)",
)
MAINTENANCE_FAILURES = Counter(
    "moodboard_maintenance_failures", "Maintenance rounds of this instance that failed"
)
BACKUP_LAST_SUCCESS = Gauge(
    "moodboard_backup_last_success_timestamp",
    "Unix time the newest verified backup in MOODBOARD_BACKUP_DIR was taken (0: none "
    "there; read at scrape)",
)
EVENT_LOOP_LAG = Histogram(
    "moodboard_event_loop_lag_seconds",
    "How late the event loop ran a timer (sampled every 0.1 s): the time a socket or "
    "request waited behind other work",
    buckets=_LATENCY_BUCKETS,
)
ASYNCIO_TASKS = Gauge(
    "moodboard_asyncio_tasks",
    "Tasks alive in this instance's event loop (read at scrape): flat while load is steady; "
    "growth under steady load is a leak",
)
WS_BUFFERED_BYTES = Gauge(
    "moodboard_ws_buffered_bytes",
    "Bytes sent to this instance's sockets that their peers have not taken yet, held in "
    "memory (outboxes and transport buffers; read at scrape): high while clients read slowly",
)
PYTHON_HEAP_BLOCKS = Gauge(
    "moodboard_python_heap_blocks",
    "Memory blocks Python's allocator has handed out and not had back (read at scrape): "
    "growth under steady load with flat tasks and sockets is objects kept alive (a leak); "
    "resident memory growing while this is flat is the allocator's or a library's",
)

ALL = (
    HTTP_REQUESTS,
    HTTP_SECONDS,
    OPEN_SOCKETS,
    JOINS,
    FRAMES_IN,
    CLOSES_ABORTED,
    ACCESS_CHECK_REVOCATIONS,
    FRAMES_OUT,
    CLOSES,
    FANOUT_SECONDS,
    GAP_FILLS,
    FEED_LAG,
    EDITS,
    EDIT_BATCH,
    EVENTS,
    AUTH_FAILURES,
    AUTH_RETIRED_KEY,
    RATE_LIMITED,
    BUS_RECONNECTS,
    LISTEN_RECONNECTS,
    BUS_PUBLISH_FAILURES,
    DB_QUERY_SECONDS,
    READ_BATCH,
    REPLICA_READS,
    DB_POOL_SIZE,
    DB_POOL_IDLE,
    DB_POOL_MAX,
    TRANSPORT_FAST_PATH,
    GENERATIONS_WAITING,
    GENERATION_OLDEST_QUEUED,
    GENERATION_OUTCOMES,
    GENERATION_WAIT,
    GENERATION_RUN,
    CREDITS,
    MAINTENANCE_DELETED,
    PURGED_PROJECTS,
    PURGED_FILES,
    MAINTENANCE_LAST_SUCCESS,
    MAINTENANCE_FAILURES,
    BACKUP_LAST_SUCCESS,
    EVENT_LOOP_LAG,
    ASYNCIO_TASKS,
    WS_BUFFERED_BYTES,
    PYTHON_HEAP_BLOCKS,
)  # every series, in the order docs/operations.md lists them

_QUERY_KINDS = {
    kind: DB_QUERY_SECONDS.labels(kind)
    for kind in ("select", "insert", "update", "delete", "with", "other")
}
_FINISHED = frozenset({"succeeded", "failed", "canceled"})


def render() -> bytes:
    """The exposition text of every series."""
    return generate_latest(REGISTRY)


def maintenance_done(deleted: Mapping[str, int], *, projects: int, files: int) -> None:
    """A maintenance round finished: what it deleted, and when."""
    for job, count in deleted.items():
        MAINTENANCE_DELETED.labels(job).inc(count)
    PURGED_PROJECTS.inc(projects)
    PURGED_FILES.inc(files)
    MAINTENANCE_LAST_SUCCESS.set(time.time())


def transport_fast_paths(*, direct_write: bool, fast_upgrade: bool) -> None:
    """Record which transport fast paths are active (server/transport/fast_paths.py)."""
    TRANSPORT_FAST_PATH.labels("direct_write").set(int(direct_write))
    TRANSPORT_FAST_PATH.labels("fast_upgrade").set(int(fast_upgrade))


def http_answered(method: str | None, status: int | None, started: float) -> None:
    """One HTTP request ended (``started``: its ``time.perf_counter()``)."""
    HTTP_REQUESTS.labels(method or "", str(status or 0)).inc()
    HTTP_SECONDS.observe(time.perf_counter() - started)


def frame_type(frame: Any) -> str:
    """The wire ``type`` of a msgspec frame (its tag), e.g. ``joined``."""
    return str(frame.__struct_config__.tag)


def _children(metric: Counter) -> Callable[[str], Counter]:
    """``metric.labels(value)``, looked up once per value: the socket paths are hot."""
    cache: dict[str, Counter] = {}

    def child(value: str) -> Counter:
        found = cache.get(value)
        if found is None:
            found = cache[value] = metric.labels(value)
        return found

    return child


_frame_in = _children(FRAMES_IN)
_frame_out = _children(FRAMES_OUT)
_event = _children(EVENTS)
_edit = _children(EDITS)
EVENT_FRAMES_SENT = FRAMES_OUT.labels("event")  # once per subscriber per event
PRESENCE_FRAMES_SENT = FRAMES_OUT.labels("presence_diff")


def received(frame: Any) -> None:
    """A client frame decoded."""
    _frame_in(frame_type(frame)).inc()


def sent(frame: Any) -> None:
    """A frame was queued to a client; an ``error`` with code rate_limited is a rate limit hit."""
    kind = frame_type(frame)
    _frame_out(kind).inc()
    if kind == "error" and getattr(frame, "code", None) == "rate_limited":
        RATE_LIMITED.labels("socket").inc()


def closed(code: int) -> None:
    CLOSES.labels(str(code)).inc()
    if code == 4429:
        RATE_LIMITED.labels("socket").inc()


def edit_outcome(outcome: Any) -> None:
    """An edit's outcome (server/projects/edits.py ``Acked`` or ``Conflicted``)."""
    if getattr(outcome, "merged", None) is None:
        _edit("conflict").inc()
    else:
        _edit("merged" if outcome.merged else "applied").inc()


def credit_change(delta: int, reason: str) -> None:
    """A balance change (counted when made, inside its transaction)."""
    if reason == "generation.reserve":
        label = "reserved"
    elif reason == "generation.refund":
        label = "refunded"
    elif reason.startswith("admin"):
        label = "granted" if delta > 0 else "taken"
    else:
        label = "other"
    CREDITS.labels(label).inc(abs(delta))


def event_committed(entity: str, data: Mapping[str, Any]) -> None:
    """An event committed here; a generation reaching a final status is an outcome."""
    _event(entity).inc()
    if entity != "generation" or data.get("status") not in _FINISHED:
        return
    GENERATION_OUTCOMES.labels(str(data["status"])).inc()
    created, started, finished = (
        _time(data.get(k)) for k in ("created_at", "started_at", "finished_at")
    )
    if created is not None and started is not None:
        GENERATION_WAIT.observe(max(0.0, started - created))
    if started is not None and finished is not None:
        GENERATION_RUN.observe(max(0.0, finished - started))


def query_logged(record: Any) -> None:
    """asyncpg's query logger callback: one observation per statement (a few microseconds)."""
    words = record.query[:16].split(None, 1)
    child = _QUERY_KINDS.get(words[0].lower() if words else "") or _QUERY_KINDS["other"]
    child.observe(record.elapsed)


def published_at() -> float:
    """Wall-clock time put on a bus event; the receiving instance measures fan-out from it."""
    return time.time()


def fanned_out(published: float) -> None:
    if published > 0:
        FANOUT_SECONDS.observe(max(0.0, time.time() - published))


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
