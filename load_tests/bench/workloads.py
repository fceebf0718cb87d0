"""The five workloads (W1-W5 of issue 8), each against one Target, each returning a dict.

Every workload opens its own sockets and drops them at the end, and reports
the generator's and the server's CPU over its measured part.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import deque
from typing import Any

from load_tests.bench.accounts import member_accounts
from load_tests.bench.edit_split import EditSplit
from load_tests.bench.harness import (
    Conn,
    CpuMeter,
    Frame,
    ProjectRef,
    Socket,
    Target,
    as_account,
    drop,
    edit_frame,
    frozen_objects,
    open_many,
    open_pumped,
    opener,
    percentiles,
    try_open_pumped,
)

W1_P99_LIMIT_S = 0.050
DRAIN_TIMEOUT_S = 5.0
WARMUP_EDITS = 20
WARMUP_S = 1.0
WARMUP_DRAIN_S = 60.0
FAILED_STEPS_TO_STOP = 2
# After the sweep, W1 halves the gap between its best passing rate and the next
# (failed) one this many times: a knee between 100 and 150 edits/s reads 125 or
# 138, not 100 (a third less, and so a third less of the baseline's rate).
W1_REFINE_STEPS = 2
W1_REFINE_PAUSE_S = 1.0
RESUME_LIMIT_S = 30.0
W4_SOCKETS_PER_PROJECT = 50  # a busy board; every join tells every member (presence)
# docs/protocol.md §3.5: a socket's default message rate. W1 spreads a step's edits over
# enough of the project's sockets to stay under it, as that many collaborators would.
W1_EDITS_PER_SOCKET = 50
# The W1 project's items, each busy from its edit's send to its ack: enough that only
# acks slower than about the delivery limit starve the editors (at 3,000 edits/s an
# item must come back within 85 ms), so a step fails on its latency, not on the pool.
W1_ITEMS = 256


class Items:
    """A project's items as editors see them: the free ones (no edit awaiting a reply), versions.

    Shared by the editors of one project, so no two edits in flight touch the same item.
    """

    def __init__(self, ids: list[str]) -> None:
        self.free: deque[str] = deque(ids)
        self.versions = dict.fromkeys(ids, 1)


class Editor:
    """One socket editing a project's items: an edit goes to a free item (no stale base).

    Items are busy from send to reply, so open-loop pacing never produces
    conflicts by itself; when no item is free the tick is counted as starved.
    """

    def __init__(
        self,
        conn: Socket,
        project: ProjectRef,
        sent: dict[str, float],
        items: Items | None = None,
        split: EditSplit | None = None,
    ) -> None:
        self.conn, self.project, self.sent = conn, project, sent
        self.items = items or Items(project.items)
        self.inflight: dict[str, str] = {}  # op_id -> item
        self.acked = self.conflicts = self.errors = 0
        self.ack_latencies: list[float] = []
        self.split = split  # where each edit's time went (the soak's probe), if asked
        conn.pump(self.on_frame)

    async def try_send(self, op_id: str) -> bool:
        if not self.items.free:
            return False
        item = self.items.free.popleft()
        self.inflight[op_id] = item
        self.sent[op_id] = now = time.perf_counter()
        if self.split is not None:
            self.split.sending(op_id, now)
        await self.conn.send(edit_frame(self.project.id, item, op_id, self.items.versions[item]))
        return True

    def on_frame(self, frame: Frame, at: float) -> None:
        if self.split is not None and frame.type == "event" and frame.op_id:
            self.split.event(frame.op_id, frame.at)
        item = self.inflight.pop(frame.ref, None) if frame.ref else None
        if item is None:
            return
        versions = self.items.versions
        if frame.type == "ack":
            self.acked += 1
            started = self.sent.get(frame.ref or "")
            if started is not None:
                self.ack_latencies.append(at - started)
            if self.split is not None:
                self.split.acked(frame.ref or "", at)
            versions[item] = frame.version or versions[item]
        elif frame.type == "conflict":
            self.conflicts += 1
            versions[item] = frame.current_version or versions[item]
        else:
            self.errors += 1
        self.items.free.append(item)


class Watcher:
    """A joined socket that only receives: delivery latency, count, seq continuity."""

    def __init__(self, conn: Socket, sent: dict[str, float]) -> None:
        self.conn, self.sent = conn, sent
        self.latencies: list[float] = []
        self.received = self.gaps = 0
        self.last: int | None = None
        conn.pump(self.on_frame)

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def on_frame(self, frame: Frame, at: float) -> None:
        if frame.type != "event":
            return
        if self.last is not None and frame.seq != self.last + 1:
            self.gaps += 1
        self.last = frame.seq
        started = self.sent.get(frame.op_id or "")
        if started is not None:
            self.latencies.append(at - started)
            self.received += 1


def both(*handlers: Any) -> Any:
    """One pump handler calling each of ``handlers`` in turn (a socket that edits and watches)."""

    def handle(frame: Frame, at: float) -> None:
        for handler in handlers:
            handler(frame, at)

    return handle


async def pace(rate: float, seconds: float, tick: Any) -> int:
    """Call ``await tick(n)`` ``rate`` times a second for ``seconds``; the ticks made."""
    loop = asyncio.get_running_loop()
    start, n = loop.time(), 0
    while loop.time() - start < seconds:
        await tick(n)
        n += 1
        delay = start + n / rate - loop.time()
        await asyncio.sleep(max(delay, 0))  # sleep(0) still lets the readers run
    return n


async def wait_until(done: Any, limit_s: float) -> None:
    """Poll ``done()`` until it holds or ``limit_s`` passed (a drain: no event to wait on)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            while True:
                if done():
                    return
                await asyncio.sleep(0.02)


def between_knee(steps: list[dict[str, Any]]) -> int | None:
    """The rate halfway from the best passing step to the next, failed, one; None: no gap left.

    None too when no step passed, or none above the best failed (the harness's top rate).
    """
    low = max((s["offered_edits_per_s"] for s in steps if s["ok"]), default=None)
    if low is None:
        return None
    high = min(
        (s["offered_edits_per_s"] for s in steps if not s["ok"] and s["offered_edits_per_s"] > low),
        default=None,
    )
    if high is None or high - low < 2:
        return None
    return round((low + high) / 2)


async def w1_fanout(
    target: Target, subscribers: int, rates: list[float], step_s: float
) -> dict[str, Any]:
    """W1: one project, N subscribers, edits at stepped rates until two steps in a row fail.

    Then the gap between the best passing rate and the next one (which failed)
    is halved ``W1_REFINE_STEPS`` times.

    A step passes with delivery p99 <= 50 ms, nothing lost, no gap, no closed
    socket and every edit answered; the result is the best passing step. The
    edits come from as many of the N sockets as the step's rate needs at
    ``W1_EDITS_PER_SOCKET`` each (round robin), and reach all N, the authors too.
    """
    project = (await target.projects(1, items=W1_ITEMS))[0]
    conns, failures = await try_open_pumped(target, subscribers, lambda _: project.id)
    try:
        if len(conns) < 2:
            raise RuntimeError(f"no sockets could join: {failures[:1]!r}")
        swept = await w1_sweep(target, project, conns, rates, step_s, W1_P99_LIMIT_S)
    finally:
        drop(conns)
    return {
        "failed_sockets": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        **swept,
    }


async def w1_sweep(
    target: Target,
    project: ProjectRef,
    conns: list[Socket],
    rates: list[float],
    step_s: float,
    p99_limit_s: float,
    *,
    stop_after: int | None = FAILED_STEPS_TO_STOP,
) -> dict[str, Any]:
    """W1's steps on sockets joined to ``project`` already (pumped); they stay open.

    Each step passes with delivery p99 <= ``p99_limit_s``, nothing lost, no gap,
    no closed socket and every edit answered; see :func:`w1_fanout`. The steps
    stop after ``stop_after`` failed ones in a row (None: every rate is tried,
    for the latency at each).

    The open sockets are frozen out of the generator's garbage collections
    while it measures (:func:`frozen_objects`): a full collection walks every
    object it tracks, and with 10,000 sockets open that is a stall of the
    generator's reading, timed as delivery latency (docs/benchmarks.md "Session 12").
    """
    sent: dict[str, float] = {}
    subscribers = len(conns)  # the server refused a few: measure the others, say so
    watchers = [Watcher(c, sent) for c in conns]
    items = Items(project.items)
    most = max(1, min(subscribers, math.ceil(max(rates) / W1_EDITS_PER_SOCKET)))
    editors = [Editor(c, project, sent, items) for c in conns[:most]]
    for editor, watcher in zip(editors, watchers, strict=False):
        editor.conn.pump(both(editor.on_frame, watcher.on_frame))

    def acked() -> int:
        return sum(e.acked for e in editors)

    def failed() -> int:
        return sum(e.errors + e.conflicts for e in editors)

    def inflight() -> int:
        return sum(len(e.inflight) for e in editors)

    steps: list[dict[str, Any]] = []

    async def step(rate: float, refined: bool = False) -> dict[str, Any]:
        """One step at ``rate`` edits/s: its measurements, and whether it passed."""
        index = len(steps)
        sent.clear()
        for w in watchers:
            w.latencies, w.received = [], 0
        acked0, failed0 = acked(), failed()
        gaps0 = sum(w.gaps for w in watchers)
        starved = 0
        active = max(1, min(len(editors), math.ceil(rate / W1_EDITS_PER_SOCKET)))

        async def tick(n: int) -> None:
            nonlocal starved
            if not await editors[n % active].try_send(f"s{index}-{n}"):
                starved += 1

        with CpuMeter(target.ps) as cpu:
            await pace(rate, step_s, tick)
        await wait_until(
            lambda: (
                not inflight()
                and sum(w.received for w in watchers) >= (acked() - acked0) * subscribers
            ),
            DRAIN_TIMEOUT_S,
        )
        acked_now = acked() - acked0
        received = sum(w.received for w in watchers)
        latency = percentiles([x for w in watchers for x in w.latencies])
        step = {
            "offered_edits_per_s": rate,
            "editor_sockets": active,
            "acked_edits_per_s": round(acked_now / step_s, 1),
            "deliveries_per_s": round(received / step_s, 1),
            "delivery_ms": latency,
            "lost": acked_now * subscribers - received,
            "unanswered": inflight(),
            "failed_edits": failed() - failed0,
            "starved_ticks": starved,
            "gaps": sum(w.gaps for w in watchers) - gaps0,
            "closed_sockets": sum(w.closed for w in watchers),
            **cpu.as_dict(),
        }
        p99 = latency["p99"]
        step["ok"] = (
            p99 is not None
            and p99 <= p99_limit_s * 1000
            and not any(
                step[k] for k in ("lost", "unanswered", "failed_edits", "starved_ticks", "gaps")
            )
            and not step["closed_sockets"]
        )
        step["refined"] = refined
        return step

    # Warm up (first queries, caches) before anything is measured, and wait until every
    # warm-up event reached every socket: at N=10,000 that is 200,000 deliveries, and
    # a backlog left over would delay (and be billed to) the first step.
    for n in range(WARMUP_EDITS):
        await editors[n % len(editors)].try_send(f"warm-{n}")
    await wait_until(
        lambda: not inflight() and sum(w.received for w in watchers) >= acked() * subscribers,
        WARMUP_DRAIN_S,
    )
    await asyncio.sleep(0.5)
    with frozen_objects():
        for rate in rates:
            steps.append(await step(rate))
            if (
                stop_after is not None
                and len(steps) >= stop_after
                and not any(s["ok"] for s in steps[-stop_after:])
            ):
                break  # past the knee (one failed step alone may be noise)
        # Between the best passing rate and the next rate, which failed, the knee
        # is somewhere in a gap of up to half the rate (100 -> 150 edits/s): halve
        # the gap a few times, so the result (and its ratio to the baseline) does
        # not jump by a third on which side of one grid line a run falls.
        for _ in range(W1_REFINE_STEPS):
            rate = between_knee(steps)
            if rate is None:
                break
            await asyncio.sleep(W1_REFINE_PAUSE_S)  # the failed step's backlog is gone
            steps.append(await step(rate, refined=True))
    passing = [s for s in steps if s["ok"]]
    best = max(passing, key=lambda s: s["deliveries_per_s"]) if passing else None
    return {
        "subscribers": subscribers,
        "step_s": step_s,
        "p99_limit_ms": p99_limit_s * 1000,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
        "best_step": best,
        "steps": steps,
        "generator_saturated": any(s["generator_saturated"] for s in steps),
    }


async def w2_throughput(target: Target, projects: int, seconds: float) -> dict[str, Any]:
    """W2: one editor per small project, closed loop (next edit on the ack): acked edits/s."""
    refs = await target.projects(projects, items=1)
    conns = await open_many(target, projects, lambda i: refs[i].id)
    counts = {"acked": 0, "conflicts": 0, "errors": 0}
    versions = {p.id: 1 for p in refs}  # kept across the warm-up and the measured run

    async def loop(conn: Conn, project: ProjectRef, until: float) -> None:
        item = project.items[0]
        while time.monotonic() < until:
            version = versions[project.id]
            op_id = uuid.uuid4().hex
            await conn.send(edit_frame(project.id, item, op_id, version))
            while (frame := await conn.recv()).ref != op_id:
                pass
            if frame.type == "ack":
                counts["acked"] += 1
                versions[project.id] = frame.version or version
            elif frame.type == "conflict":
                counts["conflicts"] += 1
                versions[project.id] = frame.current_version or version
            else:
                counts["errors"] += 1

    async def run(seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(loop(c, p, until) for c, p in zip(conns, refs, strict=True)))

    try:
        await run(WARMUP_S)  # first queries, caches: not measured
        counts.update(acked=0, conflicts=0, errors=0)
        with CpuMeter(target.ps) as cpu:
            started = time.monotonic()
            await run(seconds)
            wall = time.monotonic() - started
    finally:
        drop(conns)
    return {
        "projects": projects,
        "seconds": seconds,
        "acked_edits_per_s": round(counts["acked"] / wall, 1),
        "conflicts": counts["conflicts"],
        "errors": counts["errors"],
        **cpu.as_dict(),
    }


async def w3_latency(target: Target, projects: int, rate: float, seconds: float) -> dict[str, Any]:
    """W3: edits paced at ``rate`` over the projects; edit->ack and edit->peer latency."""
    refs = await target.projects(projects, items=8)
    sent: dict[str, float] = {}
    conns = await open_pumped(target, 2 * projects, lambda i: refs[i // 2].id)
    editors = [Editor(conns[2 * i], p, sent) for i, p in enumerate(refs)]
    watchers = [Watcher(conns[2 * i + 1], sent) for i in range(projects)]
    starved = 0

    async def tick(n: int) -> None:
        nonlocal starved
        if not await editors[n % projects].try_send(f"w3-{n}"):
            starved += 1

    try:
        with CpuMeter(target.ps) as cpu:
            ticks = await pace(rate, seconds, tick)
        await wait_until(
            lambda: (
                sum(w.received for w in watchers) >= sum(e.acked for e in editors)
                and not any(e.inflight for e in editors)
            ),
            DRAIN_TIMEOUT_S,
        )
    finally:
        drop(conns)
    acked = sum(e.acked for e in editors)
    return {
        "projects": projects,
        "rate_edits_per_s": round(rate, 1),
        "edits": ticks - starved,
        "ack_ms": percentiles([x for e in editors for x in e.ack_latencies]),
        "peer_ms": percentiles([x for w in watchers for x in w.latencies]),
        "lost": acked - sum(w.received for w in watchers),
        "failed_edits": sum(e.errors + e.conflicts for e in editors),
        "starved_ticks": starved,
        **cpu.as_dict(),
    }


async def w4_memory(target: Target, connections: int) -> dict[str, Any]:
    """W4: server RSS growth per idle joined connection (50 sockets per project)."""
    projects = max(1, connections // W4_SOCKETS_PER_PROJECT)
    refs = await target.projects(projects, items=0)
    warm = await open_pumped(target, 20, lambda i: refs[i % projects].id)
    await asyncio.sleep(1.0)
    before = target.rss()
    with CpuMeter(target.ps) as cpu:
        conns, failures = await try_open_pumped(
            target, connections, lambda i: refs[i % projects].id
        )
    await asyncio.sleep(2.0)  # let the server settle (buffers freed, tasks idle)
    after = target.rss()
    drop([*warm, *conns])
    return {
        "connections": len(conns),
        "projects": projects,
        "failed": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_connection": round((after - before) / 1024 / max(1, len(conns)), 1),
        **cpu.as_dict(),
    }


async def w5_reconnect(
    target: Target,
    connections: int,
    projects: int,
    edits: int,
    concurrency: int,
    one_account: bool = False,
) -> dict[str, Any]:
    """W5: drop every socket, edit meanwhile, resume all at once with last_seq.

    Each socket is its own account (its own session and membership, as in a real storm)
    unless ``one_account``: then all share the benchmark user's session.
    """
    refs = await target.projects(projects, items=1)
    project_of = [refs[i % projects].id for i in range(connections)]
    tokens = (
        [target.token] * connections
        if one_account
        else await member_accounts(target, project_of, connections)
    )
    conns, failures = await try_open_pumped(target, connections, project_of.__getitem__, tokens)
    # Each socket resumes as an account of its project (one each, as they were spread).
    unused: dict[str, list[str]] = {}
    for project_id, token in zip(project_of, tokens, strict=True):
        unused.setdefault(project_id, []).append(token)
    where = [(c.project_id or "", c.joined_seq, unused[c.project_id or ""].pop()) for c in conns]
    drop(conns)
    writers = await open_many(target, projects)
    for writer, project in zip(writers, refs, strict=True):
        version = 1
        for n in range(edits):
            op_id = f"w5-{n}-{uuid.uuid4().hex[:8]}"
            await writer.send(edit_frame(project.id, project.items[0], op_id, version))
            while (frame := await writer.recv()).ref != op_id:
                pass
            if frame.type != "ack":
                raise RuntimeError(f"W5 edit refused: {frame}")
            version = frame.version or version
    drop(writers)
    sem = asyncio.Semaphore(concurrency)
    tally = {"replayed": 0, "missing": 0, "duplicated": 0, "snapshots": 0, "failed": 0}

    open_socket = opener()

    async def resume(pid: str, last: int, token: str) -> Socket | None:
        try:
            async with sem:
                conn = await open_socket(as_account(target, token))
                reply, seqs = await conn.replay(pid, last, RESUME_LIMIT_S)
        except Exception:  # refused, reset, timed out: a failed resume, counted
            tally["failed"] += 1
            return None
        if reply.mode != "replay":
            tally["snapshots"] += 1
            return conn
        expected = set(range(last + 1, (reply.seq or 0) + 1))
        tally["missing"] += len(expected - set(seqs))
        tally["duplicated"] += len(seqs) - len(set(seqs))
        tally["replayed"] += len(seqs)
        return conn

    with CpuMeter(target.ps) as cpu:
        started = time.monotonic()
        resumed = await asyncio.gather(*(resume(*socket) for socket in where))
        wall = time.monotonic() - started
    drop([c for c in resumed if c is not None])
    return {
        "connections": len(where),
        "accounts": len(set(tokens)),
        "failed_first_joins": len(failures),
        "events_missed_per_socket": edits,
        "resumes_per_s": round(len(where) / wall, 1),
        **tally,
        **cpu.as_dict(),
        # The server's CPU time per resume: what to compare on a busy machine.
        "server_ms_per_resume": round(cpu.server_cpu * wall / max(1, len(where)) * 1000, 3),
    }
