"""Credits: balances never overdraw under concurrency, admins adjust them, the ledger adds up.

docs/protocol.md §2.9 and docs/architecture.md §9.4: a balance never
goes below zero, whatever the concurrency, and every change of it is a ledger
row whose ``balance`` is the running sum of the deltas.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from server.access.tables import AppUser, AuditLog
from server.access.users import create_user
from server.credits.service import InsufficientCredits, change_balance
from server.credits.tables import CreditLedger
from server.db.database import Database
from server.settings import parse_database_url
from server.types import UserId
from tests.api.conftest import PASSWORD, Api

ROOT = Path(__file__).resolve().parents[2]


async def _user_with(engine: Any, credits: int) -> UserId:
    user = await create_user(
        engine,
        email=f"spender-{uuid.uuid4().hex[:8]}@example.com",
        password=PASSWORD,
        name="spender",
        signup_credits=credits,
    )
    return user.id


async def _balance(user_id: UserId | str) -> int:
    row = await AppUser.select(AppUser.credits).where(AppUser.id == user_id).first()
    assert row is not None
    credits: int = row["credits"]
    return credits


async def _ledger_rows(user_id: UserId | str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await CreditLedger.select().where(CreditLedger.user_id == user_id).order_by(CreditLedger.id)
    )
    return rows


async def _assert_ledger_adds_up(user_id: UserId | str) -> list[dict[str, Any]]:
    """The deltas sum to the balance and each row's balance is the running sum (id order)."""
    rows = await _ledger_rows(user_id)
    running = 0
    for row in rows:
        running += row["delta"]
        assert row["balance"] == running, rows
        assert row["balance"] >= 0
    assert running == await _balance(user_id)
    return rows


def _outcomes(results: list[Any]) -> tuple[list[int], list[InsufficientCredits]]:
    balances = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    unexpected = [r for r in results if not isinstance(r, int | InsufficientCredits)]
    assert not unexpected, unexpected
    return balances, refused


async def test_concurrent_deductions_never_overdraw(engine: Any, database_url: str) -> None:
    """50 concurrent -1 deductions against a balance of 10: exactly 10 succeed, 40 get 402."""
    user_id = await _user_with(engine, 10)
    # A pool of 20 so that (on PostgreSQL) 20 transactions really run at once;
    # SQLite serialises them with IMMEDIATE transactions and must get the same count.
    async with Database.of(parse_database_url(database_url), pool_size=20) as database:
        wide = database.engine
        results = await asyncio.gather(
            *(change_balance(wide, user_id, -1, "test") for _ in range(50)),
            return_exceptions=True,
        )
        balances, refused = _outcomes(list(results))
        assert len(balances) == 10
        assert sorted(balances) == list(range(10))  # each success saw a distinct balance
        assert len(refused) == 40
        assert all(exc.status == 402 and exc.code == "payment_required" for exc in refused)
        assert await _balance(user_id) == 0
        rows = await _assert_ledger_adds_up(user_id)
        assert [(r["delta"], r["reason"]) for r in rows] == [(10, "signup")] + [(-1, "test")] * 10


_WORKER = """
import asyncio, json, sys, uuid
from server.credits.service import InsufficientCredits, change_balance
from server.db.database import Database
from server.settings import parse_database_url

async def main(url, user_id, attempts):
    async with Database.of(parse_database_url(url), pool_size=attempts) as database:
        engine = database.engine
        await engine.run_ddl("SELECT 1")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await asyncio.gather(
            *(change_balance(engine, user_id, -1, "test") for _ in range(attempts)),
            return_exceptions=True,
        )
    ok = sum(isinstance(r, int) for r in results)
    refused = sum(isinstance(r, InsufficientCredits) for r in results)
    print(json.dumps({"ok": ok, "refused": refused, "other": len(results) - ok - refused}))

asyncio.run(main(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3])))
"""


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_deductions_from_several_processes_never_overdraw(
    engine: Any, database_url: str
) -> None:
    """Four processes deducting 10 credits each at once from a balance of 10: 10 succeed in all."""
    user_id = await _user_with(engine, 10)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            database_url,
            str(user_id),
            "10",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:  # every process is connected before any of them starts
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.strip() == b"ready", line
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = [await asyncio.wait_for(proc.communicate(), 60) for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert all(proc.returncode == 0 for proc in procs)
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(c["ok"] for c in counts) == 10
    assert sum(c["refused"] for c in counts) == 30
    assert sum(c["other"] for c in counts) == 0
    assert await _balance(user_id) == 0
    rows = await _assert_ledger_adds_up(user_id)
    assert len(rows) == 11


async def _adjust(api: Api, who: Any, user_id: str, delta: int, reason: str) -> Any:
    return await api.client.post(
        f"/api/admin/users/{user_id}/credits",
        json={"delta": delta, "reason": reason},
        headers=who.auth,
    )


async def _audit(action: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await AuditLog.select()
        .where(AuditLog.action == action)
        .order_by(AuditLog.id)
        .output(load_json=True)
    )
    return rows


async def test_admin_adjustment_writes_ledger_and_audit(api: Api) -> None:
    """An admin's +25 returns the user, adds a ledger row naming the admin and an audit entry."""
    admin = await api.admin()
    user = await api.register("user")
    response = await _adjust(api, admin, user.id, 25, "support refund")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["email"], body["credits"]) == (user.id, user.email, 125)
    me = (await api.client.get("/api/me", headers=user.auth)).json()
    assert me["credits"] == 125

    rows = await _assert_ledger_adds_up(user.id)
    last = rows[-1]
    assert (last["delta"], last["balance"]) == (25, 125)
    assert "support refund" in last["reason"]
    assert str(last["actor_id"]) == admin.id

    entries = await _audit("credits.adjusted")
    assert len(entries) == 1
    entry = entries[0]
    assert str(entry["actor_id"]) == admin.id
    assert (entry["target_type"], entry["target_id"]) == ("user", user.id)
    assert entry["details"]["delta"] == 25
    assert entry["details"]["reason"] == "support refund"


async def test_a_long_admin_reason_is_kept_whole(api: Api) -> None:
    """The longest reason the API takes (200 characters) reaches the ledger and export whole."""
    admin = await api.admin()
    user = await api.register("user")
    reason = "goodwill after the outage of 27 November; " + "r" * 158
    assert len(reason) == 200
    response = await _adjust(api, admin, user.id, 5, reason)
    assert response.status_code == 200, response.text
    ledger = (await api.client.get("/api/me/export", headers=user.auth)).json()["credit_ledger"]
    assert ledger[-1]["reason"] == f"admin: {reason}"
    too_long = await _adjust(api, admin, user.id, 5, reason + "!")
    assert too_long.status_code == 400, too_long.text


async def test_admin_cannot_overdraw_a_balance(api: Api) -> None:
    """A negative adjustment beyond the balance is 402 and writes neither ledger nor audit."""
    admin = await api.admin()
    user = await api.register("user")
    before = await _ledger_rows(user.id)
    response = await _adjust(api, admin, user.id, -101, "clawback")
    assert response.status_code == 402, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payment_required"
    assert await _balance(user.id) == 100
    assert await _ledger_rows(user.id) == before
    assert await _audit("credits.adjusted") == []

    exact = await _adjust(api, admin, user.id, -100, "clawback")
    assert exact.status_code == 200, exact.text
    assert exact.json()["credits"] == 0
    await _assert_ledger_adds_up(user.id)


async def test_admin_adjustment_rejects_bad_input(api: Api) -> None:
    """A zero delta, a blank reason or an unknown user is refused and writes nothing."""
    admin = await api.admin()
    user = await api.register("user")
    before = await _ledger_rows(user.id)
    zero = await _adjust(api, admin, user.id, 0, "nothing")
    assert zero.status_code in (400, 422), zero.text
    assert zero.json()["code"] == "bad_request"
    assert "delta" in zero.json()["detail"]
    blank = await _adjust(api, admin, user.id, 5, "   ")
    assert blank.status_code in (400, 422), blank.text
    assert "reason" in blank.json()["detail"]
    unknown = await _adjust(api, admin, str(uuid.uuid4()), 5, "gift")
    assert unknown.status_code == 404, unknown.text
    assert await _ledger_rows(user.id) == before
    assert await _balance(user.id) == 100
    assert await _audit("credits.adjusted") == []


async def test_non_admin_cannot_adjust_credits(api: Api) -> None:
    """A platform user adjusting anyone's credits (their own included) gets 403."""
    user = await api.register("user")
    other = await api.register("other")
    for target in (user.id, other.id):
        response = await _adjust(api, user, target, 1000, "free money")
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    assert await _balance(user.id) == 100
    assert await _balance(other.id) == 100
    assert await _audit("credits.adjusted") == []


async def test_export_includes_the_ledger(api: Api) -> None:
    """The export lists every balance change as {delta, reason, balance, at}, oldest first."""
    admin = await api.admin()
    user = await api.register("user")
    assert (await _adjust(api, admin, user.id, 25, "bonus")).status_code == 200
    assert (await _adjust(api, admin, user.id, -5, "correction")).status_code == 200
    export = await api.client.get("/api/me/export", headers=user.auth)
    assert export.status_code == 200, export.text
    ledger = export.json()["credit_ledger"]
    assert [(e["delta"], e["balance"]) for e in ledger] == [(100, 100), (25, 125), (-5, 120)]
    assert ledger[0]["reason"] == "signup"
    assert "bonus" in ledger[1]["reason"]
    assert "correction" in ledger[2]["reason"]
    assert all(set(e) == {"delta", "reason", "balance", "at"} for e in ledger)
    stamps = [datetime.fromisoformat(e["at"]) for e in ledger]
    assert all(stamp.utcoffset() is not None for stamp in stamps)
    assert stamps == sorted(stamps)
    rows = await _ledger_rows(user.id)
    assert [(r["delta"], r["reason"], r["balance"]) for r in rows] == [
        (e["delta"], e["reason"], e["balance"]) for e in ledger
    ]
    me = (await api.client.get("/api/me", headers=user.auth)).json()
    assert sum(e["delta"] for e in ledger) == me["credits"] == 120
