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

from load_tests.bench.harness import (
    CpuMeter,
    Frame,
    Handler,
    Socket,
    Target,
    drop,
    ignore,
    opener,
    percentiles,
    try_open_pumped,
)
from load_tests.bench.queues import LoopLag, queued_bytes
from load_tests.bench.workloads import (
    W1_ITEMS,
    Editor,
    Items,
    Watcher,
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
        "server_buffered_kib": span("server_buffered_kib"),
        "server_unsent_kib": span("server_unsent_kib"),
        "generator_unread_kib": span("generator_unread_kib"),
        "generator_loop_lag_p99_ms": p99_span("generator_loop_lag_ms"),
        "gaps": samples[-1]["gaps"] if samples else 0,
        "closed_unasked": samples[-1]["closed_unasked"] if samples else 0,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


SCRAPED = ("moodboard_asyncio_tasks", "moodboard_python_heap_blocks", "moodboard_ws_buffered_bytes")


async def scraped(target: Target) -> dict[str, float | None]:
    """The server's gauges in ``SCRAPED`` (each None for the baseline, or if unreadable)."""
    text = ""
    if not target.baseline:
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                text = (await http.get(f"http://127.0.0.1:{target.port}/metrics")).text
        except httpx.HTTPError:
            pass
    found = {name: re.search(rf"^{name} (\S+)$", text, re.M) for name in SCRAPED}
    return {name: float(m.group(1)) if m else None for name, m in found.items()}


class Churn:
    """The watchers of the project, some of them cut and replaced every second."""

    def __init__(self, target: Target, project_id: str, watchers: list[Watcher]) -> None:
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
            self.watchers[index] = Watcher(conn, old.sent)
            self.joins += 1

    async def cut_and_resume(self, index: int, editor: Editor | None = None) -> None:
        """A network cut: the same watcher (and editor) carries on from its last seq."""
        watcher = self.watchers[index]
        watcher.conn.abort()
        replayed_upto = [math.inf]  # the seq `joined` announces, once known

        def on_frame(frame: Frame, at: float) -> None:
            # A replayed event counts for the seq run, not for live delivery latency.
            counted = len(watcher.latencies)
            watcher.on_frame(frame, at)
            if frame.type == "event" and (frame.seq or 0) <= replayed_upto[0]:
                del watcher.latencies[counted:]

        handler: Handler = on_frame
        if editor is not None:  # its edits in flight died with the socket: free their items
            editor.items.free.extend(editor.inflight.values())
            editor.inflight.clear()
            handler = both(editor.on_frame, on_frame)
        conn = await self._joined(watcher.last, handler)
        if conn is None:
            return
        replayed_upto[0] = conn.joined_seq
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
    watchers = [Watcher(c, sent) for c in conns]
    items = Items(project.items)
    editors = [
        Editor(c, project, sent, items)
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
        while time.monotonic() < until:
            await asyncio.sleep(min(sample_s, max(0.0, until - time.monotonic())))
            latencies = [x for w in churner.watchers for x in w.latencies]
            for w in churner.watchers:
                w.latencies = []
            acks = [x for e in editors for x in e.ack_latencies]
            for e in editors:
                e.ack_latencies = []
            ps = target.ps
            queued = queued_bytes(target.port)
            gauges = await scraped(target)
            buffered = gauges["moodboard_ws_buffered_bytes"]
            samples.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_mib": round(ps.memory_info().rss / 2**20, 2),
                    "open_fds": ps.num_fds(),
                    "threads": ps.num_threads(),
                    "tasks": gauges["moodboard_asyncio_tasks"],
                    "heap_blocks": gauges["moodboard_python_heap_blocks"],
                    "deliveries": len(latencies),
                    "delivery_ms": percentiles(latencies),
                    # edit sent to its ack: the commit path, before and beside the fan-out
                    "ack_ms": percentiles(acks),
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
                    "generator_loop_lag_ms": percentiles(generator_lag.take()),
                }
            )

    with CpuMeter(target.ps) as cpu, LoopLag() as generator_lag:
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
