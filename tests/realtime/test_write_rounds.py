"""Write rounds: every socket's held frames go out together, at most once per write delay."""

from __future__ import annotations

import asyncio
import time

from server.realtime.write_budget import LONGEST_WAIT_S
from server.realtime.write_rounds import WriteRounds


class Held:
    """What a write round needs of a socket with frames held: ``write_held``, and an id to log."""

    def __init__(self, name: str, broken: bool = False) -> None:
        self.id = name
        self.broken = broken
        self.writes = 0
        self.written = asyncio.Event()

    def write_held(self) -> None:
        self.writes += 1
        self.written.set()
        if self.broken:
            raise OSError("the transport broke")


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_socket_that_fails_to_write_does_not_keep_frames_from_the_others() -> None:
    rounds = WriteRounds(write_delay_s=0)
    sockets = [Held("a"), Held("b", broken=True), Held("c")]
    for socket in sockets:
        rounds.add(socket)
    await turns()
    assert [s.writes for s in sockets] == [1, 1, 1]


async def test_frames_soon_after_a_write_wait_for_the_delay_then_go_together() -> None:
    rounds = WriteRounds(write_delay_s=0.05)
    first, second, third = Held("a"), Held("b"), Held("c")
    rounds.add(first)
    await turns()
    assert first.writes == 1  # quiet until now: written at the end of the turn
    rounds.add(second)
    await turns()
    rounds.add(third)
    await turns()
    assert (second.writes, third.writes) == (0, 0)  # dense: held for the delay
    await asyncio.sleep(0.1)
    assert (first.writes, second.writes, third.writes) == (1, 1, 1)  # then in one round


class Slow(Held):
    """A socket whose write takes ``seconds`` of the loop's time, as a thousand sockets' do."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds

    def write_held(self) -> None:
        super().write_held()
        time.sleep(self.seconds)  # holds the loop, as writing to many sockets does


async def after_slow_rounds(write_delay_s: float, *slow_s: float) -> Held:
    """A socket given frames just after rounds back to back that took ``slow_s`` each."""
    rounds = WriteRounds(write_delay_s=write_delay_s)
    for n, seconds in enumerate(slow_s):
        rounds.add(Slow(f"many{n}", seconds))
        await turns()
    follower = Held("next")
    rounds.add(follower)
    return follower


async def seconds_until_written(socket: Held) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(socket.written.wait(), 5.0)
    return time.perf_counter() - started


async def test_a_long_round_alone_does_not_hold_the_next_frame() -> None:
    """A thousand sockets' round, then a socket's frame: the loop is not behind, only the delay."""
    follower = await after_slow_rounds(0.001, 0.018)
    waited = await seconds_until_written(follower)
    assert waited < 0.012  # the 1 ms delay, not the 18 ms the round took (Round 5's gap)


async def test_after_rounds_beyond_the_writing_share_the_next_waits() -> None:
    """Back to back, rounds spend the saved credit, then the next one waits to gather frames."""
    # Each round costs half its length of the 10 ms credit: 5 ms of debt, 10 ms to pay it back.
    follower = await after_slow_rounds(0.001, 0.015, 0.015)
    waited = await seconds_until_written(follower)
    assert waited >= 0.008  # the debt's payback at half the loop's time, not the 1 ms delay


async def test_frames_held_while_writing_is_in_debt_go_together() -> None:
    rounds = WriteRounds(write_delay_s=0.001)
    for n in range(2):  # 10 ms of debt: 20 ms to pay back
        rounds.add(Slow(f"many{n}", 0.02))
        await turns()
    await asyncio.sleep(0.002)  # past the delay: only the debt holds what comes now
    second, third = Held("b"), Held("c")
    rounds.add(second)
    await turns()
    rounds.add(third)
    await turns()
    assert (second.writes, third.writes) == (0, 0)
    await second.written.wait()
    assert third.writes == 1  # in the same round


async def test_the_wait_after_a_round_is_bounded_however_long_it_took() -> None:
    follower = await after_slow_rounds(0.001, 0.5)  # a long pause in it
    waited = await seconds_until_written(follower)
    assert LONGEST_WAIT_S / 2 <= waited < 0.3  # the bound (20 ms), not the 500 ms it took


async def test_a_delay_of_zero_never_holds_frames_even_after_slow_rounds() -> None:
    follower = await after_slow_rounds(0, 0.08, 0.08)
    await turns()
    assert follower.writes == 1
