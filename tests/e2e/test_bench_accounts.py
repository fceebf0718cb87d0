"""The benchmark's accounts (load_tests/bench/accounts.py) on a real server: W5 and W6, short.

W5's storm signs every socket in as its own account (issue 22 goal 3: one shared
session flatters the server's batched reads); W6 spreads a big room over
accounts under the per-user socket limit. Both write their accounts into the
benchmark's database: these check the server takes them as it takes any, and
that the workloads still count what they say.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from load_tests.bench.accounts import member_accounts
from load_tests.bench.big_room import w6_big_room
from load_tests.bench.harness import as_account, opener, ours
from load_tests.bench.workloads import w5_reconnect
from server.client import RestClient
from tests.conftest import PG_ADMIN_URL, require

pytestmark = pytest.mark.e2e


async def test_a_storm_of_one_account_per_socket_replays_every_event_once(
    redis_url: str, tmp_path: Path
) -> None:
    require("PostgreSQL")
    async with ours(PG_ADMIN_URL, redis_url, tmp_path) as target:
        result = await w5_reconnect(target, 30, projects=3, edits=3, concurrency=10)
    assert result["accounts"] == result["connections"] == 30
    assert result["failed_first_joins"] == result["failed"] == 0
    assert result["snapshots"] == 0
    assert result["replayed"] == 30 * 3
    assert result["missing"] == result["duplicated"] == 0


async def test_bench_accounts_are_members_of_their_project_and_nothing_else(
    redis_url: str, tmp_path: Path
) -> None:
    require("PostgreSQL")
    async with ours(PG_ADMIN_URL, redis_url, tmp_path) as target:
        first, second = await target.projects(2, items=0)
        tokens = await member_accounts(target, [first.id, second.id], 4)
        assert len(set(tokens)) == 4
        async with RestClient(f"http://127.0.0.1:{target.port}", token=tokens[0]) as rest:
            me = await rest.me()
            assert me.email.startswith("bench-")
        open_socket = opener()
        for n, token in enumerate(tokens):
            mine, other = (first, second) if n % 2 == 0 else (second, first)
            socket = await open_socket(as_account(target, token))
            try:
                assert (await socket.join(mine.id)).type == "joined"
                with pytest.raises(RuntimeError, match="join failed"):
                    await socket.join(other.id)
            finally:
                socket.abort()


async def test_a_big_room_fills_over_accounts_under_the_per_user_limit(
    redis_url: str, tmp_path: Path
) -> None:
    require("PostgreSQL")
    limit = {"MOODBOARD_MAX_SOCKETS_PER_USER": "10"}
    async with ours(PG_ADMIN_URL, redis_url, tmp_path, limit) as target:
        result = await w6_big_room(target, 40, [1.0], 1.0, per_account=10, fill_only=True)
    fill = result["fill"]
    assert fill["accounts"] == 4
    assert fill["joined"] == 40
    assert fill["failed"] == 0
