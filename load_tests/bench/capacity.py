"""Capacity mode: W1 and W2 on N instances of one topology, costs per delivery, edit, event.

``python -m load_tests.bench --instances 2 --topology standalone,cluster,sentinel,pgbouncer``
starts each topology in turn (load_tests/bench/topology.py) with N instances
and runs, with the sockets split across the instances:

- W1: one project, ``--subscribers`` sockets (socket i on instance i mod N),
  editors among them round robin (so on every instance), at each of
  ``--rates`` for ``--step`` seconds: fixed rates, no search for a knee;
- W2: ``--projects`` projects, the editor of project i on instance i mod N
  (closed loop) and one watcher on the next instance, for ``--duration`` s.

Per instance it reports CPU seconds per 1,000 deliveries made there and CPU
ms per edit taken there; for the deployment, Redis commands and Redis CPU
per event (all data nodes), PostgreSQL transactions, rows and backend CPU per
edit. Each is net of the idle rate measured for ``--idle-s`` seconds before
the workload (heartbeats, heal loops, sentinels' pings). Costs per unit, not
throughput: they hold on a busy machine (docs/benchmarks.md "Capacity").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from load_tests.bench.capacity_meters import Meter, Reading, delta, pg_delta, settle_all
from load_tests.bench.harness import Conn, drop, edit_frame, open_many, try_open_pumped
from load_tests.bench.topology import Deployment, deployment
from load_tests.bench.workloads import (
    DRAIN_TIMEOUT_S,
    W1_EDITS_PER_SOCKET,
    W1_ITEMS,
    WARMUP_EDITS,
    WARMUP_S,
    Editor,
    Items,
    Watcher,
    both,
    pace,
    wait_until,
)
from load_tests.topologies.redis_topologies import MissingBinary

CAPACITY = {"subscribers": [400], "rates": [10, 40], "step": 5.0, "projects": 20, "duration": 5.0}
CAPACITY_QUICK = {
    "subscribers": [20],
    "rates": [10],
    "step": 1.0,
    "projects": 4,
    "duration": 1.0,
    "idle_s": 1.0,
    "pg_flush_s": 2.0,  # PostgreSQL's figures then may miss some of its statistics
}


def _per(value: float, count: int, scale: float = 1.0) -> float | None:
    return round(scale * value / count, 4) if count else None


class Costs:
    """Turns two readings and the work done between them into costs per unit, net of idle."""

    def __init__(self, meter: Meter, idle: dict[str, Any], idle_pg: dict[str, Any]) -> None:
        self.meter, self.idle, self.idle_pg = meter, idle, idle_pg

    def _rate(self, value: float) -> float:
        return value / max(self.idle["seconds"], 1e-9)

    def work(
        self, before: Reading, after: Reading, edits: list[int], deliveries: list[int]
    ) -> dict[str, Any]:
        d = delta(before, after)
        seconds = d["seconds"]
        events = sum(edits)
        instances = []
        for n, cpu in enumerate(d["instance_cpu_s"]):
            net = cpu - self._rate(self.idle["instance_cpu_s"][n]) * seconds
            instances.append(
                {
                    "cpu_s": round(cpu, 3),
                    "cpu_s_net": round(net, 3),
                    "edits": edits[n],
                    "deliveries": deliveries[n],
                    "cpu_s_per_1000_deliveries": _per(net, deliveries[n], 1000),
                    "cpu_ms_per_edit": _per(net, edits[n], 1000),
                }
            )
        net_all = sum(i["cpu_s_net"] for i in instances)
        commands = d["redis"]["commands"]
        commands_net = commands - self._rate(self.idle["redis"]["commands"]) * seconds
        redis_cpu_net = d["redis_cpu_s"] - self._rate(self.idle["redis_cpu_s"]) * seconds
        bouncer_net = d["pgbouncer_cpu_s"] - self._rate(self.idle["pgbouncer_cpu_s"]) * seconds
        return {
            "seconds": round(seconds, 2),
            "events": events,
            "deliveries": sum(deliveries),
            "instances": instances,
            "all_instances": {
                "cpu_s_net": round(net_all, 3),
                "cpu_s_per_1000_deliveries": _per(net_all, sum(deliveries), 1000),
                "cpu_ms_per_edit": _per(net_all, events, 1000),
            },
            "redis": {
                **d["redis"],
                "commands_per_event": _per(commands, events),
                "commands_per_event_net": _per(commands_net, events),
                "on_masters_per_event": _per(d["redis"]["on_masters"], events),
                "cpu_ms_per_event_net": _per(redis_cpu_net, events, 1000),
            },
            "pgbouncer_cpu_ms_per_edit_net": _per(bouncer_net, events, 1000)
            if self.meter.deployment.pgbouncer_pid
            else None,
        }

    def postgres(self, before: Reading, after: Reading, edits: int) -> dict[str, Any]:
        d = pg_delta(before, after)
        seconds = d["seconds"]
        rate = seconds / max(self.idle_pg["seconds"], 1e-9)
        out: dict[str, Any] = {"edits": edits, "seconds": round(seconds, 2)}
        for name, value in d.items():
            if name == "seconds":
                continue
            net = value - self.idle_pg[name] * rate
            out[name] = round(value, 3)
            if name.endswith("_cpu_s"):
                out[f"{name.removesuffix('_s')}_ms_per_edit_net"] = _per(net, edits, 1000)
            else:
                out[f"{name}_per_edit_net"] = _per(net, edits)
        return out


async def _idle(meter: Meter, args: argparse.Namespace) -> tuple[Costs, Reading]:
    """Settle, let PostgreSQL publish its counters, then measure ``--idle-s`` of idling."""
    await settle_all(meter.deployment)
    await asyncio.sleep(args.pg_flush_s)
    start = await meter.read()
    await asyncio.sleep(args.idle_s)
    end = await meter.read()
    return Costs(meter, delta(start, end), pg_delta(start, end)), end


async def _postgres_after(
    meter: Meter, costs: Costs, start: Reading, edits: int, args: argparse.Namespace
) -> dict[str, Any]:
    await asyncio.sleep(args.pg_flush_s)
    return costs.postgres(start, await meter.read(), edits)


def _interleave(opened: list[list[Any]]) -> list[tuple[int, Any]]:
    """(instance, socket) pairs taking one socket from each instance in turn."""
    out = []
    for j in range(max((len(o) for o in opened), default=0)):
        out += [(n, conns[j]) for n, conns in enumerate(opened) if j < len(conns)]
    return out


async def w1(dep: Deployment, meter: Meter, args: argparse.Namespace, n: int) -> dict[str, Any]:
    """W1 on N instances: one project, its sockets and editors split across them."""
    count = len(dep.instances)
    project = (await dep.instances[0].projects(1, items=W1_ITEMS))[0]
    shares = [n // count + (1 if i < n % count else 0) for i in range(count)]
    opened = await asyncio.gather(
        *(
            try_open_pumped(t, k, lambda _: project.id)
            for t, k in zip(dep.instances, shares, strict=True)
        )
    )
    failures = [f for _, fails in opened for f in fails]
    pairs = _interleave([conns for conns, _ in opened])
    sent: dict[str, float] = {}
    watchers = [(i, Watcher(c, sent)) for i, c in pairs]
    items = Items(project.items)
    # At least one editor per instance, so that every instance takes edits.
    most = min(len(pairs), max(count, math.ceil(max(args.rates) / W1_EDITS_PER_SOCKET)))
    editors = [(i, Editor(c, project, sent, items)) for i, c in pairs[:most]]
    for (_, editor), (_, watcher) in zip(editors, watchers, strict=False):
        editor.conn.pump(both(editor.on_frame, watcher.on_frame))
    steps: list[dict[str, Any]] = []

    def acked(on: int | None = None) -> int:
        return sum(e.acked for i, e in editors if on is None or i == on)

    try:
        for k in range(WARMUP_EDITS):
            await editors[k % len(editors)][1].try_send(f"warm-{k}")
        await wait_until(lambda: not any(e.inflight for _, e in editors), DRAIN_TIMEOUT_S)
        costs, pg_start = await _idle(meter, args)
        acked_start = acked()
        for index, rate in enumerate(args.rates):
            sent.clear()
            for _, w in watchers:
                w.latencies, w.received = [], 0
            before_acked = [acked(i) for i in range(count)]
            start_acked = sum(before_acked)
            active = min(len(editors), max(count, math.ceil(rate / W1_EDITS_PER_SOCKET)))

            async def tick(k: int, index: int = index, active: int = active) -> None:
                await editors[k % active][1].try_send(f"s{index}-{k}")

            before = await meter.read(postgres=False)
            await pace(rate, args.step, tick)
            await wait_until(
                lambda start=start_acked: (
                    not any(e.inflight for _, e in editors)
                    and sum(w.received for _, w in watchers) >= (acked() - start) * len(watchers)
                ),
                DRAIN_TIMEOUT_S,
            )
            after = await meter.read(postgres=False)
            edits = [acked(i) - before_acked[i] for i in range(count)]
            deliveries = [sum(w.received for i, w in watchers if i == on) for on in range(count)]
            step = costs.work(before, after, edits, deliveries)
            step["offered_edits_per_s"] = rate
            step["lost"] = sum(edits) * len(watchers) - sum(deliveries)
            step["gaps"] = sum(w.gaps for _, w in watchers)
            steps.append(step)
        postgres = await _postgres_after(meter, costs, pg_start, acked() - acked_start, args)
    finally:
        drop([c for _, c in pairs])
    return {
        "subscribers": len(pairs),
        "per_instance": [len(conns) for conns, _ in opened],
        "failed_sockets": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "steps": steps,
        "postgres": postgres,
        "idle": costs.idle,
    }


async def w2(dep: Deployment, meter: Meter, args: argparse.Namespace) -> dict[str, Any]:
    """W2 on N instances: project i's editor on instance i mod N, a watcher on the next one."""
    count = len(dep.instances)
    refs = await dep.instances[0].projects(args.projects, items=1)
    mine = [[p for k, p in enumerate(refs) if k % count == i] for i in range(count)]
    editors = await asyncio.gather(
        *(
            open_many(t, len(m), lambda j, m=m: m[j].id)
            for t, m in zip(dep.instances, mine, strict=True)
        )
    )
    opened = await asyncio.gather(
        *(
            try_open_pumped(dep.instances[(i + 1) % count], len(m), lambda j, m=m: m[j].id)
            for i, m in enumerate(mine)
        )
    )
    sent: dict[str, float] = {}
    # watchers[i]: the sockets on instance i, watching instance i-1's projects
    watchers = [[Watcher(c, sent) for c in opened[(i - 1) % count][0]] for i in range(count)]
    acked = [0] * count
    versions = {p.id: 1 for p in refs}

    async def loop(on: int, conn: Conn, project_id: str, item: str, until: float) -> None:
        while time.monotonic() < until:
            op_id = uuid.uuid4().hex
            sent[op_id] = time.perf_counter()
            await conn.send(edit_frame(project_id, item, op_id, versions[project_id]))
            while (frame := await conn.recv()).ref != op_id:
                pass
            if frame.type == "ack":
                acked[on] += 1
                versions[project_id] = frame.version or versions[project_id]
            elif frame.type == "conflict":
                versions[project_id] = frame.current_version or versions[project_id]

    async def run(seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(
                loop(i, conn, p.id, p.items[0], until)
                for i in range(count)
                for conn, p in zip(editors[i], mine[i], strict=True)
            )
        )

    def received(on: int) -> int:
        return sum(w.received for w in watchers[on])

    try:
        await run(WARMUP_S)
        costs, pg_start = await _idle(meter, args)
        for ws in watchers:
            for w in ws:
                w.received = 0
        acked[:] = [0] * count
        before = await meter.read(postgres=False)
        await run(args.duration)
        await wait_until(lambda: sum(map(received, range(count))) >= sum(acked), DRAIN_TIMEOUT_S)
        after = await meter.read(postgres=False)
        # An instance delivers each of its edits to its editor, and the previous instance's
        # edits to its watchers.
        deliveries = [acked[i] + received(i) for i in range(count)]
        result = costs.work(before, after, list(acked), deliveries)
        result["lost"] = sum(acked) - sum(map(received, range(count)))
        result["postgres"] = await _postgres_after(meter, costs, pg_start, sum(acked), args)
        result["idle"] = costs.idle
    finally:
        drop([c for conns in editors for c in conns])
        drop([c for conns, _ in opened for c in conns])
    return result


async def run_topology(topology: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every selected workload on one topology; a workload that fails is recorded, not fatal."""
    out: dict[str, Any] = {}
    logs = Path(args.logs) / topology
    settings = dict(pair.split("=", 1) for pair in args.set)
    async with deployment(topology, args.instances, logs, settings) as dep:
        meter = Meter(dep)
        await meter.read()  # the meter's connections are made (and counted) now
        work: list[tuple[str, Any]] = []
        if "W1" in args.only:
            work += [(f"W1 N={n}", lambda n=n: w1(dep, meter, args, n)) for n in args.subscribers]
        if "W2" in args.only:
            work.append(("W2", lambda: w2(dep, meter, args)))
        for key, make in work:
            print(f"[{topology}] {key} on {args.instances} instances", file=sys.stderr, flush=True)
            try:
                out[key] = await make()
            except Exception as exc:
                traceback.print_exc()
                out.setdefault("failed", {})[key] = repr(exc)
        await meter.aclose()
    return out


def rows(results: dict[str, Any]) -> list[list[str]]:
    """The table: one row per instance and one for all of them, per W1 step and W2."""

    def fmt(value: Any) -> str:
        return "-" if value is None else str(value)

    out = []
    for topology, workloads in results["topologies"].items():
        for key, result in workloads.items():
            if key in ("failed", "skipped"):
                continue
            runs = result["steps"] if key.startswith("W1") else [result]
            pg = result["postgres"]
            for run in runs:
                label = key + (f" @{run['offered_edits_per_s']:g}/s" if "steps" in result else "")
                redis, total = run["redis"], run["all_instances"]
                shared = [
                    fmt(redis["commands_per_event_net"]),
                    fmt(redis["cpu_ms_per_event_net"]),
                    fmt(pg["xact_commit_per_edit_net"]),
                    fmt(pg["server_cpu_ms_per_edit_net"]),
                ]
                for n, inst in enumerate(run["instances"]):
                    out.append(
                        [topology, label, str(n), str(inst["edits"]), str(inst["deliveries"]),
                         fmt(inst["cpu_s_per_1000_deliveries"]), fmt(inst["cpu_ms_per_edit"]),
                         *(["", "", "", ""])]
                    )  # fmt: skip
                out.append(
                    [topology, label, "all", str(run["events"]), str(run["deliveries"]),
                     fmt(total["cpu_s_per_1000_deliveries"]), fmt(total["cpu_ms_per_edit"]),
                     *shared]
                )  # fmt: skip
    return out


HEAD = [
    "topology", "workload", "inst", "edits", "deliveries", "cpu s/1k deliv", "cpu ms/edit",
    "redis cmd/event", "redis cpu ms/event", "pg xact/edit", "pg cpu ms/edit",
]  # fmt: skip


def table(results: dict[str, Any]) -> str:
    cells = rows(results)
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(HEAD)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(HEAD), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def save(path: str, results: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(results, indent=2))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "conditions": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "instances": args.instances,
            "argv": sys.argv[1:],
            "idle_s": args.idle_s,
            "pg_flush_s": args.pg_flush_s,
        },
        "topologies": {},
    }
    for topology in args.topology:
        try:
            results["topologies"][topology] = await run_topology(topology, args)
        except MissingBinary as exc:
            print(f"!!! {topology} SKIPPED: {exc} !!!", file=sys.stderr, flush=True)
            results["topologies"][topology] = {"skipped": str(exc)}
        except Exception as exc:  # the topology did not start: the others still run
            traceback.print_exc()
            results["topologies"][topology] = {"failed": {"start": repr(exc)}}
        save(args.json, results)  # each topology's figures as soon as it ends
    return results


def main(args: argparse.Namespace) -> int:
    results = asyncio.run(main_async(args))
    save(args.json, results)
    print(table(results))
    for topology, workloads in results["topologies"].items():
        if "skipped" in workloads:
            print(f"SKIPPED {topology}: {workloads['skipped']}")
        for key, error in workloads.get("failed", {}).items():
            print(f"FAILED {topology} {key}: {error}")
        for key, result in workloads.items():
            for run in result.get("steps", [result]) if isinstance(result, dict) else []:
                if run.get("lost"):
                    print(f"LOST {topology} {key}: {run['lost']} deliveries")
    print(f"details: {args.json}")
    return 0
