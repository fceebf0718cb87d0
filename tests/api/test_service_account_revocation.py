"""Worker keys can be revoked, over REST and at the console, and a revoked key is refused at once.

Issue 19 item 8: service-account keys were called revocable, but nothing
revoked them. ``DELETE /api/admin/service-accounts/{id}`` (admins) and
``moodboard revoke-service-account --id`` do; every call with a key looks
it up, so the next one after the revocation is 401.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import httpx

from server.access.tables import AuditLog
from tests.api.conftest import Api
from tests.servers import create_service_account, running_server, server_env


async def test_an_admin_revokes_a_key_and_its_next_call_is_refused(api: Api) -> None:
    """Claiming works, the admin revokes the key, the very next claim is 401; audited, listed."""
    admin = await api.admin()
    created = await api.client.post(
        "/api/admin/service-accounts", json={"name": "renderer"}, headers=admin.auth
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    claim = {"worker_id": "w1"}
    assert (await api.client.post("/api/worker/claim", json=claim, headers=key)).status_code == 204
    account_id = created.json()["id"]
    revoked = await api.client.delete(
        f"/api/admin/service-accounts/{account_id}", headers=admin.auth
    )
    assert revoked.status_code == 204, revoked.text
    refused = await api.client.post("/api/worker/claim", json=claim, headers=key)
    assert refused.status_code == 401, refused.text
    again = await api.client.delete(f"/api/admin/service-accounts/{account_id}", headers=admin.auth)
    assert again.status_code == 204  # revoking twice changes nothing
    listed = await api.client.get("/api/admin/service-accounts", headers=admin.auth)
    (row,) = [r for r in listed.json() if r["id"] == account_id]
    assert row["revoked_at"] is not None
    assert "key" not in row
    entries = await AuditLog.select().where(AuditLog.action == "service_account.revoked")
    assert [e["target_id"] for e in entries] == [account_id]


async def test_revoking_an_unknown_account_is_404_and_users_cannot_revoke(api: Api) -> None:
    """An unknown id is 404 for an admin; a signed-in non-admin gets 403."""
    admin = await api.admin()
    user = await api.register("user")
    path = "/api/admin/service-accounts/00000000-0000-4000-8000-000000000000"
    assert (await api.client.delete(path, headers=admin.auth)).status_code == 404
    assert (await api.client.delete(path, headers=user.auth)).status_code == 403


async def test_the_console_command_revokes_a_key(tmp_path: Path) -> None:
    """``moodboard revoke-service-account --id`` ends a key a running server then refuses."""
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    async with running_server(env, tmp_path) as server:
        key = await create_service_account(env, "console")
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth) as client:
            first = await client.post("/api/worker/claim", json={"worker_id": "w"})
            assert first.status_code == 204, first.text
            account_id = await _account_id(env)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "revoke-service-account", "--id", account_id,
                env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, err.decode()
            assert "revoked" in out.decode()
            refused = await client.post("/api/worker/claim", json={"worker_id": "w"})
            assert refused.status_code == 401, refused.text


async def _account_id(env: dict[str, str]) -> str:
    """The id of the only service account in ``env``'s SQLite database."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        (row,) = db.execute("SELECT id FROM service_account").fetchall()
    return str(row[0])
