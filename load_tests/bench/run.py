"""Benchmark: fan-out, edit throughput, latency, memory and reconnect storms, against a baseline.

Not a test: it prints a table and writes JSON. It starts our server
(``moodboard serve`` on a fresh PostgreSQL database and Redis) and then the
bare baseline (baseline_server.py, the ``websockets`` library alone), each
pinned to CPU 0 with taskset while this process, the load generator, runs
on CPU 1, and runs on the same harness:

- W1 fan-out: one project, N subscribers, edits at stepped rates: the highest
  deliveries/s with p99 <= 50 ms and nothing lost (ours and baseline);
- W2 throughput: one editor per small project, closed loop: acked edits/s;
- W3 latency: W2's workload paced at half W2's rate: ack and peer p50/p95/p99;
- W4 memory: server RSS per idle joined connection (ours and baseline);
- W5 reconnect storm: drop every socket, resume with last_seq: resumes/s,
  missing and duplicated events (ours and baseline);
- W6 big room (only with ``--only W6``): ``--room`` sockets join one project,
  spread over accounts under the per-user socket limit: seconds and joins/s,
  server CPU per join, KiB per socket; then W1's steps on that room (p99 <=
  100 ms), with the server's CPU per delivery (big_room.py).
- SOAK (only when named: ``--only SOAK``; ours alone): steady load with joins,
  leaves and resumes for ``--soak-minutes``: RSS slope, tasks, descriptors
  and p99 per window after warm-up (load_tests/bench/soak.py).

A workload where the generator used over 80 % of its CPU is flagged: then
the generator, not the server, may be the limit. Quick check (seconds):

    python -m load_tests.bench --quick

Full run (a quiet machine, about 10 minutes): ``python -m load_tests.bench``.

Capacity mode (``--instances`` or ``--topology``): W1 and W2 on N instances of
each topology, costs per delivery, per edit and per event
(load_tests/bench/capacity.py):

    python -m load_tests.bench --instances 2 --topology standalone,cluster,sentinel,pgbouncer
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from load_tests.bench import big_room, capacity, soak, workloads
from load_tests.bench.harness import (
    Target,
    baseline,
    can_pin,
    machine_probe,
    ours,
    pin_generator,
    raise_fd_limit,
    settle,
)
from load_tests.bench.report import (
    failed,
    latency_rows,
    latency_table,
    room_latency,
    saturated,
    soak_text,
    summarise,
    table,
)
from load_tests.bench.topology import TOPOLOGIES

FULL = {"subscribers": [100, 1000], "step": 5.0, "projects": 50, "duration": 10.0}
QUICK = {
    "subscribers": [20],
    "rates": [5, 20, 50],
    "step": 2.0,
    "projects": 5,
    "duration": 3.0,
    "connections": 200,
    "storm": 100,
    "soak_minutes": 0.25,
    "soak_subscribers": 20,
    "soak_rate": 5.0,
    "soak_churn": 1,
    "soak_sample": 3.0,
}


RATES = [2, 5, 10, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the tool works")
    parser.add_argument(
        "--only", default="W1,W2,W3,W4,W5", help="comma list of workloads (W3 needs W2)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline server")
    parser.add_argument(
        "--subscribers", type=_ints, help="W1 N values (100,1000; capacity mode: 400)"
    )
    parser.add_argument(
        "--rates",
        type=_floats,
        help="W1 edit rates (edits/s), tried in order until two in a row fail; then the gap"
        " above the best passing one is halved twice (default 2,5,10,...,5000; capacity mode:"
        " each rate is run once, default 10,40)",
    )
    parser.add_argument("--step", type=float, help="W1 seconds per rate (5)")
    parser.add_argument("--projects", type=int, help="W2/W3 projects (50; capacity mode: 20)")
    parser.add_argument("--duration", type=float, help="W2/W3 seconds (10; capacity mode: 5)")
    parser.add_argument("--connections", type=int, default=5000, help="W4 idle connections")
    parser.add_argument("--storm", type=int, default=1000, help="W5 sockets dropped and resumed")
    parser.add_argument("--storm-projects", type=int, default=10)
    parser.add_argument("--storm-edits", type=int, default=5, help="W5 events missed per socket")
    parser.add_argument("--storm-concurrency", type=int, default=200, help="W5 resumes in flight")
    parser.add_argument(
        "--storm-one-account",
        action="store_true",
        help="W5 sockets all share the benchmark user's session (default: an account each)",
    )
    parser.add_argument(
        "--storm-rounds",
        type=int,
        default=1,
        help="W5 storms in a row on the same server (its run-to-run spread, without restarts)",
    )
    parser.add_argument("--room", type=int, default=10_000, help="W6 sockets joined to one project")
    parser.add_argument(
        "--room-rates",
        type=_floats,
        default=[0.5, 1, 2, 3, 5],
        help="W6 edit rates (edits/s) on the full room, each tried (the latency at each)",
    )
    parser.add_argument("--room-step", type=float, default=5.0, help="W6 seconds per rate")
    parser.add_argument(
        "--room-per-account",
        type=int,
        default=big_room.PER_ACCOUNT,
        help="W6 sockets per account (at most the server's MOODBOARD_MAX_SOCKETS_PER_USER, which"
        " stays at its default 50 when W6 runs alone)",
    )
    parser.add_argument(
        "--room-fill-only", action="store_true", help="W6: the join fill only, no W1 steps"
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=30.0,
        help="SOAK (only when named in --only; our server alone): how long to hold the load",
    )
    parser.add_argument(
        "--soak-rate",
        type=float,
        default=30.0,
        help="SOAK edits/s (a third of the W1 knee at --soak-subscribers is the intended load)",
    )
    parser.add_argument("--soak-subscribers", type=int, default=1000, help="SOAK joined sockets")
    parser.add_argument(
        "--soak-churn",
        type=int,
        default=5,
        help="SOAK sockets a second that leave and join afresh, and as many that resume",
    )
    parser.add_argument(
        "--soak-edits-per-socket",
        type=float,
        default=soak.EDITS_PER_SOCKET,
        help="SOAK edits a second from each editing socket (a socket's edits go one after "
        "another, so one socket near the rate limit measures its own queue)",
    )
    parser.add_argument(
        "--soak-sample", type=float, default=30.0, help="SOAK seconds between samples"
    )
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL allowed to create and drop a database (not in capacity mode: it starts"
        " its own)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="Redis (not in capacity mode: it starts its own)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MOODBOARD_NAME=VALUE",
        help="a setting of our server (repeatable), e.g. MOODBOARD_WRITE_DELAY_US=0",
    )
    parser.add_argument(
        "--instances",
        type=int,
        help="capacity mode: this many instances (default 2), W1 and W2 only, sockets split",
    )
    parser.add_argument(
        "--topology",
        type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
        help="capacity mode: comma list of " + "|".join(TOPOLOGIES) + " (default standalone)",
    )
    parser.add_argument(
        "--idle-s",
        type=float,
        default=3.0,
        help="capacity mode: seconds of idling measured before each workload (subtracted)",
    )
    parser.add_argument(
        "--pg-flush-s",
        type=float,
        default=11.0,
        help="capacity mode: seconds to wait for PostgreSQL's statistics (they lag up to 10 s)",
    )
    parser.add_argument("--json", default="bench.json", help="where to write the results")
    parser.add_argument("--logs", default="bench-logs", help="directory of the servers' logs")
    args = parser.parse_args(argv)
    args.capacity = args.instances is not None or args.topology is not None
    if args.capacity:
        args.instances = args.instances or 2
        args.topology = args.topology or ["standalone"]
        unknown = set(args.topology) - set(TOPOLOGIES)
        if unknown:
            parser.error(f"unknown topology {', '.join(sorted(unknown))}")
        defaults, quick = capacity.CAPACITY, capacity.CAPACITY_QUICK
    else:
        defaults, quick = {**FULL, "rates": RATES}, QUICK
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        for key, value in quick.items():
            setattr(args, key, value)
    args.only = {w.strip().upper() for w in args.only.split(",")}
    if args.only == {"W6"}:  # issue 22: the per-user socket limit stays (spread over accounts)
        args.set = [f"MOODBOARD_MAX_SOCKETS_PER_USER={big_room.PER_ACCOUNT}", *args.set]
    return args


async def run_target(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Every selected workload against one server; a workload that fails is recorded, not fatal."""
    out: dict[str, Any] = {}

    async def measure(key: str, label: str, work: Awaitable[dict[str, Any]]) -> None:
        waited = await settle(target.ps)
        print(
            f"[{target.name}] {label} (server idle after {waited} s)", file=sys.stderr, flush=True
        )
        try:
            out[key] = await work
        except Exception as exc:
            print(f"[{target.name}] {key} failed:", file=sys.stderr, flush=True)
            traceback.print_exc()
            out.setdefault("failed", {})[key] = repr(exc)

    if "W1" in args.only:
        for n in args.subscribers:
            await measure(
                f"W1 N={n}",
                f"W1 fan-out to {n} subscribers",
                workloads.w1_fanout(target, n, args.rates, args.step),
            )
    if not target.baseline and "W2" in args.only:
        await measure(
            "W2",
            f"W2 closed-loop edits over {args.projects} projects",
            workloads.w2_throughput(target, args.projects, args.duration),
        )
        if "W3" in args.only and "W2" in out:
            rate = max(1.0, out["W2"]["acked_edits_per_s"] / 2)
            await measure(
                "W3",
                f"W3 latency at {rate:.0f} edits/s",
                workloads.w3_latency(target, args.projects, rate, args.duration),
            )
    if "W4" in args.only:
        await measure(
            "W4",
            f"W4 memory of {args.connections} idle joined connections",
            workloads.w4_memory(target, args.connections),
        )
    if not target.baseline and "SOAK" in args.only:
        await measure(
            "SOAK",
            f"SOAK {args.soak_minutes} min: {args.soak_subscribers} sockets, "
            f"{args.soak_rate} edits/s, churn {args.soak_churn}/s",
            soak.soak(
                target,
                seconds=args.soak_minutes * 60,
                subscribers=args.soak_subscribers,
                rate=args.soak_rate,
                churn=args.soak_churn,
                sample_s=args.soak_sample,
                edits_per_socket=args.soak_edits_per_socket,
            ),
        )
    if "W5" in args.only:
        for round_ in range(1, args.storm_rounds + 1):
            await measure(
                "W5" if round_ == 1 else f"W5 round {round_}",
                f"W5 reconnect storm of {args.storm} sockets (round {round_})",
                workloads.w5_reconnect(
                    target,
                    args.storm,
                    args.storm_projects,
                    args.storm_edits,
                    args.storm_concurrency,
                    one_account=args.storm_one_account,
                ),
            )
    if "W6" in args.only:
        await measure(
            f"W6 N={args.room}",
            f"W6 big room: {args.room} sockets join one project",
            big_room.w6_big_room(
                target,
                args.room,
                args.room_rates,
                args.room_step,
                per_account=args.room_per_account,
                fill_only=args.room_fill_only,
            ),
        )
    return out


def _settings(pairs: list[str]) -> dict[str, str]:
    """``--set`` values as variables; only MOODBOARD_* ones (the database and Redis are ours)."""
    settings = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    if len(settings) != len(pairs) or not all(k.startswith("MOODBOARD_") for k in settings):
        raise SystemExit("--set takes MOODBOARD_NAME=VALUE")
    return settings


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    fds = raise_fd_limit()
    room = args.room if "W6" in args.only else 0  # W6's sockets are all open at once, once
    needed = max(2 * max(args.connections, args.storm, *args.subscribers), room) + 200
    if fds < needed:
        print(f"warning: open-file limit {fds} < {needed}; raise ulimit -n", file=sys.stderr)
    pinned = pin_generator()
    results: dict[str, Any] = {
        "conditions": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "pinned": pinned,
            "server_cpu": 0 if pinned else None,
            "generator_cpu": 1 if pinned else None,
            "open_file_limit": fds,
            "python": platform.python_version(),
            "quick": args.quick,
            "argv": sys.argv[1:],
            "probe_s_at_start": machine_probe(),
        }
    }
    if not can_pin():
        print("warning: no taskset or one CPU: server and generator share CPUs", file=sys.stderr)
    logs = Path(args.logs)
    async with ours(args.admin_url, args.redis_url, logs, _settings(args.set)) as target:
        results["ours"] = await run_target(target, args)
    if not args.no_baseline:
        async with baseline(logs) as target:
            results["baseline"] = await run_target(target, args)
    results["conditions"]["probe_s_at_end"] = machine_probe()
    results["summary"] = summarise(results)
    results["latency"] = latency_rows(results)
    results["generator_saturated"] = saturated(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    if args.capacity:
        # asyncio's own loop: under uvloop, ``pg_ctl start`` (the capacity mode's
        # PostgreSQL) never reaches EOF on its output pipe, and subprocesses take no
        # ``user=``. The capacity mode measures the servers' CPU, not the generator's.
        _settings(args.set)
        raise_fd_limit()
        return capacity.main(args)
    with contextlib.suppress(ImportError):
        import uvloop  # the fastest loop available for the generator

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    results = asyncio.run(main_async(args))
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(results["summary"]))
    if results["latency"]:
        print("\nW1 delivery latency by offered rate (ms; goal: within 4 / 10 of the baseline's,")
        print("up to half our knee)")
        print(latency_table(results["latency"]))
    if room := room_latency(results):
        print(room)
    conditions = results["conditions"]
    print(
        f"machine probe (server's CPU, lower is faster): {conditions['probe_s_at_start']} s"
        f" at the start, {conditions['probe_s_at_end']} s at the end"
    )
    if results["generator_saturated"]:
        print(
            "WARNING: the generator used over 80 % of its CPU in: "
            + ", ".join(results["generator_saturated"])
            + " (the server may be faster than measured there)"
        )
    if "SOAK" in results["ours"]:
        print(soak_text(results["ours"]["SOAK"]))
    for line in failed(results):
        print(f"FAILED {line}")
    print(f"details: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
