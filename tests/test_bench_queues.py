"""The soak's probe of where late frames wait (load_tests/bench/queues.py)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest

from load_tests.bench.queues import GcPauses, LoopLag, parse, queued_bytes

# Three sockets to port 0x1F90 (8080) and one elsewhere, as /proc/net/tcp prints them.
TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:D431 01 00000400:00000000 00:00000000 00000000     0
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000800 00:00000000 00000000     0
   3: 0100007F:D432 0100007F:1F90 06 00000000:00000100 00:00000000 00000000     0
   4: 0100007F:0050 0100007F:D433 01 00000010:00000020 00:00000000 00000000     0
"""


def test_the_server_end_counts_its_unsent_bytes_the_generator_end_its_unread() -> None:
    found = parse(TABLE, 8080)
    # The listening socket (0A) and the one in TIME_WAIT (06) are not connections.
    assert found.server_unsent == 0x400
    assert found.generator_unread == 0x800
    assert parse(TABLE, 80).server_unsent == 0x10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_bytes_a_client_has_not_read_are_found_on_its_end() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                accepted.sendall(b"x" * 50_000)
                deadline = time.monotonic() + 5
                found = queued_bytes(port)
                while found is not None and found.generator_unread < 50_000:
                    assert time.monotonic() < deadline, found
                    time.sleep(0.01)
                    found = queued_bytes(port)
                assert found is not None
                assert found.generator_unread == 50_000
                client.recv(60_000)


async def test_the_loop_lag_sees_a_blocked_loop() -> None:
    with LoopLag(every_s=0.01) as lag:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251  # the loop blocked on purpose: the next timer is late
        await asyncio.sleep(0.05)
        lags = lag.take()
    assert max(lags) >= 0.15
    assert lag.take() == []


def test_the_gc_pauses_are_timed_each_on_its_own() -> None:
    import gc

    with GcPauses() as pauses:
        kept = [[i] for i in range(300_000)]  # tracked containers: a full collection walks them
        gc.collect()
        gc.collect()
        found = pauses.take()
    assert len(found) >= 2
    assert max(found) > 0
    assert pauses.take() == []
    gc.collect()  # after the block: no longer timed
    assert pauses.take() == []
    del kept


def test_a_measurement_leaves_the_open_sockets_out_of_the_collections() -> None:
    """What lives when the measurement starts is frozen (not walked), and thawed after it."""
    import gc

    from load_tests.bench.harness import decode, frozen_objects

    kept = [[i] for i in range(1_000)]
    with frozen_objects():
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0
    # A frame read per delivery is never tracked: it cannot start a collection.
    assert not gc.is_tracked(decode(b'{"type": "event", "seq": 1, "at": "x"}'))
    del kept
