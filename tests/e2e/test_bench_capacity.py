"""The benchmark's capacity mode (load_tests/bench/capacity.py), at toy sizes: it runs.

Two instances on a Redis and a PostgreSQL of their own: W1 and W2 with
their sockets split across both, and the report's costs per unit for each
instance. Without redis-server 7+ or initdb it skips loudly (fails under
CI=true), as the topology tests do. The figures themselves are docs/benchmarks.md's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from load_tests.bench import capacity
from load_tests.bench.run import parse_args
from tests.pg_topology import require_binaries
from tests.redis_topologies import require_redis_server

pytestmark = pytest.mark.e2e


def test_an_unknown_topology_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--topology", "standalone,mesh"])


async def test_two_instances_report_costs_per_delivery_edit_and_event(tmp_path: Path) -> None:
    require_binaries("initdb")
    require_redis_server()
    args = parse_args(
        [
            "--instances", "2", "--topology", "standalone", "--subscribers", "6",
            "--rates", "10", "--step", "1", "--projects", "4", "--duration", "1",
            "--idle-s", "0.5", "--pg-flush-s", "0",
            "--logs", str(tmp_path), "--json", str(tmp_path / "capacity.json"),
        ]
    )  # fmt: skip
    results = await capacity.main_async(args)

    standalone = results["topologies"]["standalone"]
    assert "failed" not in standalone, standalone.get("failed")
    w1, w2 = standalone["W1 N=6"], standalone["W2"]
    assert w1["per_instance"] == [3, 3]
    (step,) = w1["steps"]
    assert step["lost"] == 0
    assert w2["lost"] == 0
    for run in (step, w2):
        # every instance took edits and delivered events, and each has its cost per unit
        for instance in run["instances"]:
            assert instance["edits"] > 0
            assert instance["deliveries"] > 0
            assert instance["cpu_ms_per_edit"] is not None
            assert instance["cpu_s_per_1000_deliveries"] is not None
        assert run["redis"]["by_command"].get("publish", 0) >= run["events"]
        assert run["redis"]["commands_per_event"] >= 1
    assert w2["postgres"]["xact_commit"] > 0
    assert w2["postgres"]["server_cpu_s"] > 0
    table = capacity.table(results)
    assert "standalone" in table
    assert "redis cmd/event" in table
