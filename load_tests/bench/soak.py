"""The soak (issue 22 goal 5): steady load for a long while, watched for leaks and drift.

One project, ``subscribers`` joined sockets, edits at ``rate`` a second (about
a third of the W1 knee at that size is the intended load), and churn: every
second ``churn`` sockets leave (cut, and a new one joins fresh) and as many
are cut and resume with their ``last_seq`` (each resumed socket must carry
on gap-free: its seq run is checked across the cut). Every ``sample_s`` the
server's RSS, open file descriptors, threads and event-loop tasks
(``moodboard_asyncio_tasks``) are read, with the delivery latency of that
window.

The verdict is in the numbers, not a pass/fail: the RSS slope after warm-up
(MiB an hour, least squares), the range of tasks and descriptors after
warm-up, the p99 of each window, and every gap (a lost, duplicated or
out-of-order event). Growth in tasks or descriptors under steady load is a
leak; so is an RSS slope that does not flatten in a longer run.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from typing import Any

import httpx

from load_tests.bench.edit_split import EditSplit
from load_tests.bench.harness import (
    CpuMeter,
    Frame,
    Handler,
    Socket,
    Target,
    drop,
    frozen_objects,
    ignore,
    opener,
    percentiles,
    try_open_pumped,
)
from load_tests.bench.latency_counts import LatencyCounts
from load_tests.bench.queues import GcPauses, LoopLag, queued_bytes
from load_tests.bench.workloads import (
    W1_ITEMS,
    Editor,
    Items,
    both,
    pace,
)

# A socket's frames are handled one after another (its edit is committed before its next
# frame is read), so a socket editing near its rate limit (50 a second) on a busy server
# measures its own queue: an edit waiting behind the last. The soak's edits come from
# several sockets at a collaborator's pace, each a small share of the server's time.
EDITS_PER_SOCKET = 5.0
WARMUP_SHARE = 0.2  # the first fifth of the samples is warm-up: not in the slope or ranges


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (seconds, value) points, per hour (None under two points)."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


def after_warmup(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples past the warm-up share (at least the last two, when there are two)."""
    skip = min(math.ceil(len(samples) * WARMUP_SHARE), max(0, len(samples) - 2))
    return samples[skip:]


def verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """What the samples say: RSS slope, the ranges of tasks and descriptors, p99s, gaps."""
    steady = after_warmup(samples)

    def span(key: str) -> list[float] | None:
        values = [s[key] for s in steady if s.get(key) is not None]
        return [min(values), max(values)] if values else None

    def p99_span(key: str) -> list[float] | None:
        p99s = [s[key]["p99"] for s in steady if s.get(key) and s[key]["p99"] is not None]
        return [min(p99s), max(p99s)] if p99s else None

    # Windows in which no edit was acked: the load was not steady there (an editor stuck).
    first = max(1, len(samples) - len(steady))
    stalled = sum(
        1
        for i in range(first, len(samples))
        if samples[i]["acked_edits"] == samples[i - 1]["acked_edits"]
    )
    span_s = steady[-1]["t_s"] - steady[0]["t_s"] if len(steady) > 1 else 0
    return {
        "acked_edits_per_s": round(
            (steady[-1]["acked_edits"] - steady[0]["acked_edits"]) / span_s, 1
        )
        if span_s
        else None,
        "stalled_windows": stalled,
        "rss_mib_per_hour": _rounded(slope_per_hour([(s["t_s"], s["rss_mib"]) for s in steady])),
        # A leak keeps its slope; a warm-up that ends late loses it in the second half.
        "rss_mib_per_hour_second_half": _rounded(
            slope_per_hour([(s["t_s"], s["rss_mib"]) for s in steady[len(steady) // 2 :]])
        ),
        "rss_mib": span("rss_mib"),
        "heap_blocks_per_hour": _rounded(
            slope_per_hour([(s["t_s"], s["heap_blocks"]) for s in steady if s.get("heap_blocks")])
        ),
        "heap_blocks": span("heap_blocks"),
        "tasks": span("tasks"),
        "open_fds": span("open_fds"),
        "threads": span("threads"),
        "p99_ms": p99_span("delivery_ms"),
        "ack_p99_ms": p99_span("ack_ms"),
        "before_server_p99_ms": p99_span("before_server_ms"),
        "commit_p99_ms": p99_span("commit_ms"),
        "server_buffered_kib": span("server_buffered_kib"),
        "server_unsent_kib": span("server_unsent_kib"),
        "generator_unread_kib": span("generator_unread_kib"),
        "generator_loop_lag_p99_ms": p99_span("generator_loop_lag_ms"),
        "generator_loop_lag_max_ms": span("generator_loop_lag_max_ms"),
        "generator_gc_max_ms": span("generator_gc_max_ms"),
        "server_lag_over_100ms": span("server_lag_over_100ms"),
        "server_full_collections": span("server_full_collections"),
        "gaps": samples[-1]["gaps"] if samples else 0,
        "closed_unasked": samples[-1]["closed_unasked"] if samples else 0,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def taken_splits(editors: list[Editor]) -> tuple[list[float], list[float]]:
    """The editors' split edits since the last call (before the server, commit), emptied."""
    before_server: list[float] = []
    commit: list[float] = []
    for editor in editors:
        if editor.split is not None:
            before_server += editor.split.before_server
            commit += editor.split.commit
            editor.split.before_server, editor.split.commit = [], []
    return before_server, commit


SCRAPED = {
    "tasks": r"moodboard_asyncio_tasks",
    "heap_blocks": r"moodboard_python_heap_blocks",
    "buffered_bytes": r"moodboard_ws_buffered_bytes",
    # counters, read as their growth over a window (the timer readings of the loop lag
    # histogram, every 0.1 s: those later than 100 ms; the full collections)
    "lag_readings": r"moodboard_event_loop_lag_seconds_count",
    "lag_readings_within_100ms": r'moodboard_event_loop_lag_seconds_bucket\{le="0\.1"\}',
    "full_collections": r'python_gc_collections_total\{generation="2"\}',
}


def read_scrape(text: str) -> dict[str, float | None]:
    """The values named in ``SCRAPED`` in a ``/metrics`` text (None where absent)."""
    found = {key: re.search(rf"^{name} (\S+)$", text, re.M) for key, name in SCRAPED.items()}
    return {key: float(m.group(1)) if m else None for key, m in found.items()}


async def scraped(target: Target) -> dict[str, float | None]:
    """The server's values in ``SCRAPED`` (each None for the baseline, or if unreadable)."""
    text = ""
    if not target.baseline:
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                text = (await http.get(f"http://127.0.0.1:{target.port}/metrics")).text
        except httpx.HTTPError:
            pass
    return read_scrape(text)


def grown(now: dict[str, float | None], before: dict[str, float | None], key: str) -> int | None:
    """How much the counter ``key`` grew between two scrapes (None if either lacks it)."""
    a, b = now.get(key), before.get(key)
    return None if a is None or b is None else int(a - b)


class Member:
    """One joined socket of the soak's project: its seq run checked, its deliveries timed.

    Every member's delivery latencies go into one shared :class:`LatencyCounts`
    (no list to sort while the load goes on). Events replayed on a resume, up
    to the seq ``joined`` announced, count for the seq run only.
    """

    def __init__(self, conn: Socket, sent: dict[str, float], delivery: LatencyCounts) -> None:
        self.conn, self.sent, self.delivery = conn, sent, delivery
        self.gaps = 0
        self.last: int | None = None
        self.replayed_upto: float = 0  # events up to this seq are replayed, not live
        conn.pump(self.on_frame)

    def on_frame(self, frame: Frame, at: float) -> None:
        if frame.type != "event":
            return
        seq = frame.seq or 0
        if self.last is not None and seq != self.last + 1:
            self.gaps += 1
        self.last = seq
        if seq <= self.replayed_upto:
            return
        started = self.sent.get(frame.op_id or "")
        if started is not None:
            self.delivery.append(at - started)


class Churn:
    """The watchers of the project, some of them cut and replaced every second."""

    def __init__(self, target: Target, project_id: str, watchers: list[Member]) -> None:
        self.target, self.project_id = target, project_id
        self.watchers = watchers  # index 0.. the editors' own first, never churned
        self.open_socket = opener()
        self.joins = self.resumes = self.failures = 0
        self.retired_gaps = 0  # gaps seen by watchers since replaced
        self.server_closed = 0  # sockets the server closed (each then resumed)

    async def leave_and_join(self, index: int) -> None:
        """A member leaves (the socket is cut) and someone joins afresh."""
        old = self.watchers[index]
        old.conn.abort()
        self.retired_gaps += old.gaps
        conn = await self._joined(None)
        if conn is not None:
            self.watchers[index] = Member(conn, old.sent, old.delivery)
            self.joins += 1

    async def cut_and_resume(self, index: int, editor: Editor | None = None) -> None:
        """A network cut: the same watcher (and editor) carries on from its last seq."""
        watcher = self.watchers[index]
        watcher.conn.abort()
        watcher.replayed_upto = math.inf  # until `joined` says up to which seq it replays
        handler: Handler = watcher.on_frame
        if editor is not None:  # its edits in flight died with the socket: free their items
            editor.items.free.extend(editor.inflight.values())
            editor.inflight.clear()
            if editor.split is not None:
                editor.split.forget()
            handler = both(editor.on_frame, watcher.on_frame)
        conn = await self._joined(watcher.last, handler)
        if conn is None:
            return
        watcher.replayed_upto = conn.joined_seq
        watcher.conn = conn
        if editor is not None:
            editor.conn = conn
        conn.pump(handler)
        self.resumes += 1

    async def repair(self, editors: list[Editor]) -> None:
        """Resume, as a client would, every socket the server closed (an editor's too)."""
        for index, watcher in enumerate(self.watchers):
            if watcher.conn.closed:
                self.server_closed += 1
                await self.cut_and_resume(index, editors[index] if index < len(editors) else None)

    async def _joined(self, last_seq: int | None, handler: Handler = ignore) -> Socket | None:
        try:
            conn = await self.open_socket(self.target)
            # Set before joining: a fast client hands on the replayed events that arrive
            # with `joined` itself, before the join returns (load_tests/bench/fastclient.py).
            conn.handler = handler
            await conn.join(self.project_id, last_seq)
        except Exception:  # refused or timed out: counted, the watcher is retired
            self.failures += 1
            return None
        return conn

    async def run(self, per_s: int, editors: list[Editor], until: float) -> None:
        """Every second until ``until``: ``per_s`` leave-and-joins and as many resumes."""
        rng = random.Random(7)
        while time.monotonic() < until:
            started = time.monotonic()
            await self.repair(editors)
            churnable = range(len(editors), len(self.watchers))  # editors' sockets stay
            if len(churnable) >= 2 * per_s and per_s:
                picked = rng.sample(churnable, 2 * per_s)
                await asyncio.gather(
                    *(self.leave_and_join(i) for i in picked[:per_s]),
                    *(self.cut_and_resume(i) for i in picked[per_s:]),
                )
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def soak(
    target: Target,
    *,
    seconds: float,
    subscribers: int,
    rate: float,
    churn: int,
    sample_s: float,
    edits_per_socket: float = EDITS_PER_SOCKET,
) -> dict[str, Any]:
    """Run the soak against ``target``; its samples and their verdict."""
    project = (await target.projects(1, items=W1_ITEMS))[0]
    sent: dict[str, float] = {}
    conns, failures = await try_open_pumped(target, subscribers, lambda _: project.id)
    if len(conns) < 2:
        raise RuntimeError(f"no sockets could join: {failures[:1]!r}")
    delivery = LatencyCounts()
    watchers = [Member(c, sent, delivery) for c in conns]
    items = Items(project.items)
    editors = [
        Editor(c, project, sent, items, EditSplit())
        for c in conns[: max(1, min(len(conns), math.ceil(rate / edits_per_socket)))]
    ]
    for editor, watcher in zip(editors, watchers, strict=False):
        editor.conn.pump(both(editor.on_frame, watcher.on_frame))
    churner = Churn(target, project.id, watchers)
    started = time.monotonic()
    until = started + seconds
    starved = 0

    async def tick(n: int) -> None:
        nonlocal starved
        if not await editors[n % len(editors)].try_send(f"soak-{n}"):
            starved += 1

    samples: list[dict[str, Any]] = []

    async def sample() -> None:
        last_scrape = await scraped(target)
        while time.monotonic() < until:
            await asyncio.sleep(min(sample_s, max(0.0, until - time.monotonic())))
            deliveries = len(delivery)
            delivery_ms = delivery.take()
            acks = [x for e in editors for x in e.ack_latencies]
            for e in editors:
                e.ack_latencies = []
            before_server, commit = taken_splits(editors)
            ps = target.ps
            queued = queued_bytes(target.port)
            gauges = await scraped(target)
            buffered = gauges["buffered_bytes"]
            lags, pauses = generator_lag.take(), generator_gc.take()
            over = grown(gauges, last_scrape, "lag_readings")
            within = grown(gauges, last_scrape, "lag_readings_within_100ms")
            full_collections = grown(gauges, last_scrape, "full_collections")
            last_scrape.update(gauges)
            samples.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_mib": round(ps.memory_info().rss / 2**20, 2),
                    "open_fds": ps.num_fds(),
                    "threads": ps.num_threads(),
                    "tasks": gauges["tasks"],
                    "heap_blocks": gauges["heap_blocks"],
                    "deliveries": deliveries,
                    "delivery_ms": delivery_ms,
                    # edit sent to its ack: the commit path, before and beside the fan-out
                    "ack_ms": percentiles(acks),
                    # the ack's time split at the event's `at` (load_tests/bench/edit_split.py)
                    "before_server_ms": percentiles(before_server),
                    "commit_ms": percentiles(commit),
                    "acked_edits": sum(e.acked for e in editors),
                    "starved_ticks": starved,
                    "gaps": churner.retired_gaps + sum(w.gaps for w in churner.watchers),
                    "closed_unasked": churner.server_closed,
                    "joins": churner.joins,
                    "resumes": churner.resumes,
                    "failed_joins": churner.failures,
                    # where late frames wait outside the server's loop (load_tests/bench/queues.py)
                    "server_buffered_kib": None if buffered is None else int(buffered) // 1024,
                    "server_unsent_kib": None if queued is None else queued.server_unsent // 1024,
                    "generator_unread_kib": None
                    if queued is None
                    else queued.generator_unread // 1024,
                    "generator_loop_lag_ms": percentiles(lags),
                    # a stall or two in a window is its p99 and not the lag's p99: the longest
                    "generator_loop_lag_max_ms": round(1000 * max(lags), 1) if lags else None,
                    "generator_gc_max_ms": round(1000 * max(pauses), 1) if pauses else 0.0,
                    "server_lag_over_100ms": None
                    if over is None or within is None
                    else over - within,
                    "server_full_collections": full_collections,
                }
            )

    # The sockets opened so far live the whole run: frozen, the generator's full
    # collections no longer walk them.
    with (
        frozen_objects(),
        CpuMeter(target.ps) as cpu,
        LoopLag() as generator_lag,
        GcPauses() as generator_gc,
    ):
        try:
            await asyncio.gather(
                pace(rate, seconds, tick),
                churner.run(churn, editors, until),
                sample(),
            )
        finally:
            drop([w.conn for w in churner.watchers])
    return {
        "seconds": seconds,
        "subscribers": len(conns),
        "failed_first_joins": len(failures),
        "rate": rate,
        "churn_per_s": churn,
        "editors": len(editors),
        "samples": samples,
        "verdict": verdict(samples),
        **cpu.as_dict(),
    }
