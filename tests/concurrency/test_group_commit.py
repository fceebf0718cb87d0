"""Group commit: one call per key in flight, the items arriving meanwhile batched into the next."""

from __future__ import annotations

import asyncio

import pytest

from server.concurrency.group_commit import GroupCommit


class Recorder:
    """A ``run`` that records its calls and answers each item doubled, once released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0
        self.gate = asyncio.Event()
        self.fail_on: int | None = None

    async def run(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, items))
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[key])
        try:
            await self.gate.wait()
            if self.fail_on in items:
                raise ValueError(f"refused {self.fail_on}")
            return [item * 2 for item in items]
        finally:
            self.in_flight[key] -= 1


async def test_a_lone_item_runs_at_once_and_what_arrives_meanwhile_goes_together() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    first = asyncio.create_task(group.submit("p", 1))
    await asyncio.sleep(0)
    assert recorder.calls == [("p", [1])]
    assert group.busy("p")
    rest = [asyncio.create_task(group.submit("p", n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert len(recorder.calls) == 1  # they wait for the call in flight
    recorder.gate.set()
    assert await asyncio.gather(first, *rest) == [2, 4, 6, 8, 10, 12]
    assert recorder.calls == [("p", [1]), ("p", [2, 3, 4, 5, 6])]
    assert recorder.most_in_flight == 1
    assert not group.busy("p")


async def test_keys_do_not_wait_for_each_other() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    tasks = [asyncio.create_task(group.submit(key, 1)) for key in ("a", "b", "c")]
    await asyncio.sleep(0)
    assert sorted(key for key, _ in recorder.calls) == ["a", "b", "c"]  # all in flight at once
    recorder.gate.set()
    assert await asyncio.gather(*tasks) == [2, 2, 2]


async def test_a_batch_holds_at_most_max_batch_items() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run, max_batch=3)
    tasks = [asyncio.create_task(group.submit("p", n)) for n in range(8)]
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await asyncio.gather(*tasks) == [n * 2 for n in range(8)]
    assert [items for _, items in recorder.calls] == [[0], [1, 2, 3], [4, 5, 6], [7]]
    assert recorder.most_in_flight == 1


async def test_a_failed_call_fails_its_own_items_only() -> None:
    recorder = Recorder()
    recorder.fail_on = 3
    group = GroupCommit(recorder.run, max_batch=2)
    tasks = [asyncio.create_task(group.submit("p", n)) for n in range(6)]
    await asyncio.sleep(0)
    recorder.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # calls: [0], [1, 2], [3, 4] (refused), [5]
    assert results[:3] == [0, 2, 4]
    assert results[5] == 10
    assert all(isinstance(r, ValueError) for r in results[3:5])
    assert not group.busy("p")


async def test_a_caller_that_gives_up_leaves_the_others_served() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    first = asyncio.create_task(group.submit("p", 1))
    waiting = [asyncio.create_task(group.submit("p", n)) for n in (2, 3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # a socket closed while its edit waited
    recorder.gate.set()
    assert await first == 2
    assert await waiting[1] == 6
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    assert not group.busy("p")


async def test_the_first_callers_cancellation_still_starts_the_next_call() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    first = asyncio.create_task(group.submit("p", 1))
    await asyncio.sleep(0)
    second = asyncio.create_task(group.submit("p", 2))
    await asyncio.sleep(0)
    first.cancel()
    recorder.gate.set()
    assert await second == 4
    assert not group.busy("p")


async def test_a_cancelled_call_cancels_what_waits_and_leaves_the_key_idle() -> None:
    """Shutdown cancels the call in flight: its items and the ones waiting are cancelled too."""
    recorder = Recorder()
    group = GroupCommit(recorder.run, max_batch=2)
    tasks = [asyncio.create_task(group.submit("p", n)) for n in range(5)]
    await asyncio.sleep(0)
    tasks[0].cancel()  # the lone first call: the next batch ([1, 2]) starts
    for _ in range(3):  # the cancellation, the next call's task, its first step
        await asyncio.sleep(0)
    assert [items for _, items in recorder.calls] == [[0], [1, 2]]
    for task in list(group._tasks):
        task.cancel()
    async with asyncio.timeout(5):  # nothing may be left waiting for a call that never comes
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert not group.busy("p")
    assert [items for _, items in recorder.calls] == [[0], [1, 2]]  # [3, 4] never ran


async def test_an_item_whose_caller_gave_up_while_waiting_is_never_run() -> None:
    """Its caller may be undoing it already (a leave after a cancelled join): it must not run."""
    recorder = Recorder()
    group = GroupCommit(recorder.run, max_batch=2)
    first = asyncio.create_task(group.submit("p", 1))
    waiting = [asyncio.create_task(group.submit("p", n)) for n in (2, 3, 4, 5)]
    await asyncio.sleep(0)
    waiting[0].cancel()
    waiting[1].cancel()
    recorder.gate.set()
    results = await asyncio.gather(first, *waiting, return_exceptions=True)
    assert [results[0], *results[3:]] == [2, 8, 10]
    assert [items for _, items in recorder.calls] == [[1], [4, 5]]  # a full batch of live ones
    assert not group.busy("p")
