"""Event-loop lag: how late the loop runs a timer, sampled, as ``moodboard_event_loop_lag_seconds``.

One instance is one event loop: anything that holds it (a long synchronous
call, a burst of work) delays every socket and request of the instance. A
sampler sleeps ``interval`` seconds and records how much later than asked it
woke up; the histogram's high quantiles are the stalls (alert
``MoodboardEventLoopLag``). A stall shorter than the interval may fall between
two wake-ups and be missed; longer ones are always seen (by at least their
length minus the interval). Cost: ten timer wake-ups a second.
"""

from __future__ import annotations

import asyncio

from server import metrics

INTERVAL_S = 0.1


async def sample_forever(interval: float = INTERVAL_S) -> None:
    """Observe the loop's lag every ``interval`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, loop.time() - asked))
