"""Faults injected at random times: instance SIGKILL/SIGTERM, Redis and PostgreSQL restarts,
a client that stops reading (while a burst of big notes is written to its projects).

One fault at a time, on a schedule drawn from the run's seed; every kind
happens at least once. A SIGTERM is timed: the instance must exit within
10 s (docs/protocol.md §1); after 15 s it is killed. Killed or drained instances
come back on the same port. While Redis is down an access change and a
logout are made on purpose: they must hold when the bus returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence

from load_tests.chaos.actors import Subscriber
from load_tests.chaos.records import Drain, Fault, Journal
from load_tests.chaos.topology import Instance, Topology

KINDS = ("sigkill", "sigterm", "redis_restart", "postgres_restart", "slow_reader")
DRAIN_LIMIT_S = 10.0
DRAIN_WAIT_S = 15.0


def schedule(rng: random.Random, seconds: float) -> list[tuple[float, str]]:
    """(offset in s, kind) of every fault: each kind once, more when the run is long.

    A slow reader comes right before a SIGTERM (of the reader's instance): a
    drain must not wait for a client that does not read.
    """
    count = max(len(KINDS), round(seconds / 6))
    others = [k for k in KINDS if k not in ("slow_reader", "sigterm")]
    rest = others + [rng.choice(KINDS) for _ in range(count - len(KINDS))]
    rng.shuffle(rest)
    at = rng.randrange(len(rest) + 1)
    order = [*rest[:at], "slow_reader", "sigterm", *rest[at:]]
    start, end = 0.1 * seconds, 0.85 * seconds
    step = (end - start) / len(order)
    return [(start + i * step + rng.uniform(0, step * 0.3), kind) for i, kind in enumerate(order)]


class Injector:
    """Carries out a fault schedule against a topology and the run's clients."""

    def __init__(
        self,
        topology: Topology,
        subscribers: Sequence[Subscriber],
        journal: Journal,
        rng: random.Random,
        during_bus_outage: Callable[[], Awaitable[None]],
        burst: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.topology, self.subscribers, self.journal, self.rng = (
            topology,
            subscribers,
            journal,
            rng,
        )
        self.during_bus_outage = during_bus_outage
        self.burst = burst
        self.paused: set[Subscriber] = set()
        self.background: set[asyncio.Task[None]] = set()

    async def run(self, plan: list[tuple[float, str]], started: float, stop: asyncio.Event) -> None:
        for offset, kind in plan:
            delay = started + offset - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            await self.inject(kind)

    async def inject(self, kind: str) -> None:
        if kind == "slow_reader":
            await self._slow_reader()
        elif kind in ("sigkill", "sigterm"):
            await self._stop_instance(signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)
        elif kind == "redis_restart":
            await self._redis_restart()
        elif kind == "postgres_restart":
            started = time.monotonic()
            await self.topology.postgres.restart()
            self._note(
                kind, started, f"pg_ctl restart -m fast took {time.monotonic() - started:.1f} s"
            )

    def _note(self, kind: str, start: float, detail: str) -> None:
        self.journal.faults.append(Fault(kind, start, time.monotonic(), detail))

    async def _slow_reader(self) -> None:
        connected = [
            s for s in self.subscribers if s.instance_now() is not None and s not in self.paused
        ]
        if not connected:
            return
        reader = self.rng.choice(connected)
        seconds = self.rng.uniform(8.0, 14.0)
        self.paused.add(reader)
        instance = reader.instance_now()
        index = instance.index if instance is not None else -1
        detail = f"{reader.name} on instance {index} stops reading for {seconds:.1f} s"
        now = time.monotonic()
        self.journal.faults.append(Fault("slow_reader", now, now + seconds, detail))
        task = asyncio.create_task(reader.pause(seconds))
        task.add_done_callback(lambda _: self.paused.discard(reader))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        await self.burst(reader.projects)  # big frames pile up in front of it

    def _victim(self) -> Instance | None:
        paused = [s.instance_now() for s in self.paused]
        candidates = [i for i in paused if i is not None and i.running]
        if candidates:
            return self.rng.choice(candidates)
        live = self.topology.live()
        return self.rng.choice(live) if len(live) > 1 else None

    async def _stop_instance(self, sig: signal.Signals) -> None:
        instance = self._victim()
        if instance is None:
            return
        kind = "sigkill" if sig == signal.SIGKILL else "sigterm"
        signalled = time.monotonic()
        instance.signal(sig)
        exited = await instance.wait_exit(DRAIN_WAIT_S)
        took = time.monotonic() - signalled
        if sig == signal.SIGTERM:
            self.journal.drains.append(Drain(instance.index, took if exited else None))
        if not exited:
            await instance.kill()
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        await instance.start()
        self._note(
            kind,
            signalled,
            f"instance {instance.index} exited after {took:.1f} s"
            + ("" if exited else " (killed)")
            + f", back after {time.monotonic() - signalled:.1f} s",
        )

    async def _redis_restart(self) -> None:
        redis = self.topology.redis
        await redis.stop()
        down = time.monotonic()
        await self.during_bus_outage()
        await asyncio.sleep(max(0.0, self.rng.uniform(2.5, 4.5) - (time.monotonic() - down)))
        await redis.start()
        self._note("redis_restart", down, f"Redis down for {time.monotonic() - down:.1f} s")

    async def heal(self) -> None:
        """The end of the run: every reader reads again, every instance runs."""
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        if self.topology.redis.process is None:
            await self.topology.redis.start()
        for instance in self.topology.instances:
            if not instance.running:
                await instance.start()
