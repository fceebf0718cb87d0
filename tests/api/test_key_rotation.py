"""Service-account keys rotate without a failed worker call (issue 23 item 8).

``POST /api/admin/service-accounts/{id}/rotate`` issues a new key; the old
one keeps working for the grace period, or until ``DELETE
.../previous-key``; admins see whether a worker still uses it. On both
engines, through REST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from server.access.tables import AuditLog, ServiceAccount
from tests.api.conftest import Account, Api

CLAIM = {"worker_id": "w1"}


def _retired_key_uses() -> float:
    value = REGISTRY.get_sample_value("moodboard_auth_retired_key_total", {"kind": "service_key"})
    return value or 0.0


async def _claim_status(api: Api, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return (await api.client.post("/api/worker/claim", json=CLAIM, headers=headers)).status_code


async def _listed(api: Api, admin: Account, account_id: str) -> dict[str, Any]:
    listed = await api.client.get("/api/admin/service-accounts", headers=admin.auth)
    (row,) = [r for r in listed.json() if r["id"] == account_id]
    assert "key" not in row
    assert "previous_key_hash" not in row
    return dict(row)


async def test_old_and_new_keys_both_work_until_the_old_one_is_ended(api: Api) -> None:
    """After a rotation both keys claim; the admin sees the old one used, ends it: 401 for it,
    the new one goes on; a rotation with no grace ends the old key at once; all audited."""
    admin = await api.admin()
    created = await api.client.post(
        "/api/admin/service-accounts", json={"name": "renderer"}, headers=admin.auth
    )
    account_id, first = created.json()["id"], created.json()["key"]
    assert await _claim_status(api, first) == 204

    rotate = f"/api/admin/service-accounts/{account_id}/rotate"
    rotated = await api.client.post(rotate, json={"grace_hours": 2}, headers=admin.auth)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["key"]
    assert second.startswith("mbk_")
    assert second != first
    until = datetime.fromisoformat(rotated.json()["previous_key_expires_at"])
    assert timedelta(hours=1.9) < until - datetime.now(UTC) <= timedelta(hours=2)

    before = _retired_key_uses()
    assert await _claim_status(api, first) == 204  # a worker not switched yet
    assert await _claim_status(api, second) == 204
    assert _retired_key_uses() == before + 1
    row = await _listed(api, admin, account_id)
    assert row["previous_key_last_used_at"] is not None
    assert row["last_used_at"] is not None
    assert datetime.fromisoformat(row["previous_key_expires_at"]) == until

    previous = f"/api/admin/service-accounts/{account_id}/previous-key"
    assert (await api.client.delete(previous, headers=admin.auth)).status_code == 204
    assert await _claim_status(api, first) == 401
    assert await _claim_status(api, second) == 204
    assert (await _listed(api, admin, account_id))["previous_key_expires_at"] is None
    assert (await api.client.delete(previous, headers=admin.auth)).status_code == 204  # no-op

    # A leaked key: rotate with no grace, the old key stops at once.
    now = await api.client.post(rotate, json={"grace_hours": 0}, headers=admin.auth)
    assert now.status_code == 200
    assert now.json()["previous_key_expires_at"] is None
    assert await _claim_status(api, second) == 401
    assert await _claim_status(api, now.json()["key"]) == 204

    actions = [
        e["action"]
        for e in await AuditLog.select(AuditLog.action).order_by(AuditLog.id)
        if e["action"].startswith("service_account.")
    ]
    assert actions == [
        "service_account.created",
        "service_account.key_rotated",
        "service_account.previous_key_ended",
        "service_account.key_rotated",
    ]


async def test_a_grace_ends_by_itself_and_bad_rotations_are_refused(api: Api) -> None:
    """An expired grace refuses the old key; a second rotation retires the first key for good;
    a revoked account cannot rotate (409), an unknown one is 404, bad bodies are 400."""
    admin = await api.admin()
    created = await api.client.post(
        "/api/admin/service-accounts", json={"name": "old"}, headers=admin.auth
    )
    account_id, first = created.json()["id"], created.json()["key"]
    rotate = f"/api/admin/service-accounts/{account_id}/rotate"
    second = (await api.client.post(rotate, json={}, headers=admin.auth)).json()  # 24 h
    assert datetime.fromisoformat(second["previous_key_expires_at"]) > datetime.now(
        UTC
    ) + timedelta(hours=23)
    third = (await api.client.post(rotate, json={}, headers=admin.auth)).json()
    assert await _claim_status(api, first) == 401  # one previous key at most
    assert await _claim_status(api, second["key"]) == 204
    await ServiceAccount.update(
        {ServiceAccount.previous_key_expires_at: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(ServiceAccount.id == account_id)
    assert await _claim_status(api, second["key"]) == 401
    assert await _claim_status(api, third["key"]) == 204

    for body in ({"grace_hours": 721}, {"grace_hours": -1}, {"grace_hours": "1"}, {"x": 1}):
        refused = await api.client.post(rotate, json=body, headers=admin.auth)
        assert refused.status_code == 400, (body, refused.text)
    unknown = "/api/admin/service-accounts/00000000-0000-4000-8000-000000000000"
    assert (
        await api.client.post(f"{unknown}/rotate", json={}, headers=admin.auth)
    ).status_code == 404
    assert (
        await api.client.delete(f"{unknown}/previous-key", headers=admin.auth)
    ).status_code == 404
    assert (
        await api.client.delete(rotate.removesuffix("/rotate"), headers=admin.auth)
    ).status_code == 204
    revoked = await api.client.post(rotate, json={}, headers=admin.auth)
    assert revoked.status_code == 409, revoked.text
    assert await _claim_status(api, third["key"]) == 401
