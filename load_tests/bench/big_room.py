"""W6, a big room: N sockets join one project (the join fill), then W1 on all of them.

Issue 22 goal 4 (a town-hall board): how long filling one project with N
sockets takes (every ``joined`` carries the full presence map and every join
is told to every member, docs/protocol.md §3.4), the server's CPU and memory
per joined socket, then W1's fan-out steps on the full room with a p99 bound
of ``W6_P99_LIMIT_S``, with the server's CPU per delivery.

The per-user socket limit (MOODBOARD_MAX_SOCKETS_PER_USER, 50 by default)
stays: the sockets are spread over ``ceil(N / per_account)`` accounts, each
a member of the project (load_tests/bench/accounts.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

from load_tests.bench.accounts import member_accounts
from load_tests.bench.harness import (
    CpuMeter,
    ProjectRef,
    Socket,
    Target,
    drop,
    opener,
)
from load_tests.bench.workloads import W1_ITEMS, w1_sweep

W6_P99_LIMIT_S = 0.100
PER_ACCOUNT = 50  # the server's default MOODBOARD_MAX_SOCKETS_PER_USER
FILL_CONCURRENCY = 100  # sockets opening and joining at once
SETTLE_S = 2.0  # after the fill, before the memory reading (buffers freed, diffs sent)


def _rates(done: list[float], started: float) -> dict[str, float]:
    """Joins/s in the first and the last tenth of the fill (a quadratic fill slows down)."""
    if len(done) < 20:
        return {}
    ordered = sorted(done)
    tenth = len(ordered) // 10
    first = ordered[tenth - 1] - started
    last = ordered[-1] - ordered[-tenth - 1]
    return {
        "first_tenth_joins_per_s": round(tenth / max(first, 1e-9), 1),
        "last_tenth_joins_per_s": round(tenth / max(last, 1e-9), 1),
    }


async def join_fill(
    target: Target, project: ProjectRef, sockets: int, tokens: list[str], per_account: int
) -> tuple[list[Socket], dict[str, Any]]:
    """Open and join ``sockets`` sockets to ``project``; the sockets and the fill's figures."""
    open_socket = opener()
    sem = asyncio.Semaphore(FILL_CONCURRENCY)
    done: list[float] = []
    as_account = [dataclasses.replace(target, token=token) for token in tokens]

    async def one(index: int) -> Socket:
        async with sem:
            conn = await open_socket(as_account[index // per_account])
            try:
                await conn.join(project.id)
            except BaseException:
                conn.abort()
                raise
            conn.pump()
            done.append(time.perf_counter())
            return conn

    before = target.rss()
    with CpuMeter(target.ps) as cpu:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(sockets)), return_exceptions=True)
        wall = time.perf_counter() - started
    conns = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(SETTLE_S)
    after = target.rss()
    server_s = cpu.server_cpu * wall
    return conns, {
        "sockets": sockets,
        "joined": len(conns),
        "failed": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "accounts": len(tokens),
        "seconds": round(wall, 2),
        "joins_per_s": round(len(conns) / wall, 1),
        **_rates(done, started),
        "server_cpu_s": round(server_s, 2),
        "server_ms_per_join": round(1000 * server_s / max(1, len(conns)), 3),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_socket": round((after - before) / 1024 / max(1, len(conns)), 1),
        **cpu.as_dict(),
    }


async def w6_big_room(
    target: Target,
    sockets: int,
    rates: list[float],
    step_s: float,
    *,
    per_account: int = PER_ACCOUNT,
    fill_only: bool = False,
) -> dict[str, Any]:
    """W6: the join fill of one project to ``sockets``, then W1's steps on it (unless fill_only)."""
    project = (await target.projects(1, items=W1_ITEMS))[0]
    tokens = await member_accounts(target, [project.id], math.ceil(sockets / per_account))
    conns, fill = await join_fill(target, project, sockets, tokens, per_account)
    try:
        if fill_only or len(conns) < 2:
            return {"fill": fill, "generator_saturated": fill["generator_saturated"]}
        # Every rate is tried: the latency at each rate is the result, passing or not.
        swept = await w1_sweep(
            target, project, conns, rates, step_s, W6_P99_LIMIT_S, stop_after=None
        )
    finally:
        drop(conns)
    for step in swept["steps"]:
        deliveries = step["deliveries_per_s"]
        step["server_us_per_delivery"] = (
            round(1e6 * step["server_cpu"] / deliveries, 2) if deliveries else None
        )
    return {
        "fill": fill,
        **swept,
        "generator_saturated": fill["generator_saturated"] or swept["generator_saturated"],
    }
