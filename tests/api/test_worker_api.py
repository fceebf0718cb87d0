"""The worker API in process, on both engines: claims, leases, reports, refunds, events."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.access.tables import AppUser
from server.credits.tables import CreditLedger
from server.events.tables import Event
from server.generations.builtin import compose
from server.generations.tables import Generation
from server.projects.tables import Project, ProjectResource
from tests.api.conftest import PASSWORD, Account, Api, app_for, serving
from tests.api.test_generations import _ledger_consistent, _setup


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def service_key(api: Api, name: str = "worker") -> str:
    """A fresh service-account key, made by a platform admin."""
    admin = await api.admin()
    made = await api.client.post(
        "/api/admin/service-accounts", json={"name": name}, headers=admin.auth
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


async def request(api: Api, owner: Account, pid: str, room: str, prompt: str) -> dict[str, Any]:
    made = await api.client.post(
        f"/api/projects/{pid}/generations",
        json={"room_id": room, "prompt": prompt},
        headers=owner.auth,
    )
    assert made.status_code == 202, made.text
    body: dict[str, Any] = made.json()
    return body


async def claim(api: Api, key: str, worker_id: str = "w1") -> httpx.Response:
    return await api.client.post(
        "/api/worker/claim", json={"worker_id": worker_id}, headers=bearer(key)
    )


async def report(api: Api, key: str, gid: str, call: str, body: Any) -> httpx.Response:
    return await api.client.post(
        f"/api/worker/generations/{gid}/{call}", json=body, headers=bearer(key)
    )


async def row(gid: str) -> dict[str, Any]:
    found: dict[str, Any] | None = (
        await Generation.select()
        .where(Generation.id == uuid.UUID(gid))
        .output(load_json=True)
        .first()
    )
    assert found is not None
    return found


async def kinds(gid: str) -> list[str]:
    rows = (
        await Event.select(Event.kind, Event.seq)
        .where(Event.entity_id == uuid.UUID(gid))
        .order_by(Event.seq)
    )
    return [r["kind"] for r in rows]


async def credits(account: Account) -> int:
    found = await AppUser.select(AppUser.credits).where(AppUser.id == uuid.UUID(account.id)).first()
    assert found is not None
    value: int = found["credits"]
    return value


async def refunds(gid: str) -> int:
    return await CreditLedger.count().where(
        (CreditLedger.generation_id == uuid.UUID(gid))
        & (CreditLedger.reason == "generation.refund")
    )


async def expire_lease(gid: str) -> None:
    """Make the job's lease run out now (as if its worker went silent for the whole lease)."""
    await Generation.update(
        {Generation.lease_expires_at: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(Generation.id == uuid.UUID(gid))


async def test_claim_report_complete_end_to_end(api: Api) -> None:
    """Claim -> progress by stage -> asset -> complete: result, timings, resource, events."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    generation = await request(api, owner, pid, room, "oak shelves and linen")
    claimed = await claim(api, key)
    assert claimed.status_code == 200, claimed.text
    job = claimed.json()
    assert (job["id"], job["status"], job["attempts"]) == (generation["id"], "running", 1)
    assert job["room"]["id"] == room
    assert job["lease_expires_at"] is not None
    assert job["queue_wait_ms"] >= 0
    for progress, stage in ((0, "layout"), (50, "compose")):
        answered = await report(
            api, key, job["id"], "progress", {"progress": progress, "stage": stage}
        )
        assert answered.status_code == 200, answered.text
        assert (answered.json()["progress"], answered.json()["stage"]) == (progress, stage)
    svg = compose("oak shelves and linen", ["#aabbcc", "#223344"])
    stored = await api.client.post(
        f"/api/worker/generations/{job['id']}/asset",
        content=svg,
        headers={**bearer(key), "Content-Type": "image/svg+xml"},
    )
    assert stored.status_code == 201, stored.text
    asset = stored.json()
    assert asset["size_bytes"] == len(svg)
    result = {"url": asset["url"], "asset_id": asset["id"], "width": 960, "height": 640}
    done = await report(api, key, job["id"], "complete", {"result": result})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["progress"], body["result"]) == ("succeeded", 100, result)
    assert body["run_ms"] >= 0
    assert set(body["stage_timings"]) == {"layout", "compose"}
    listed = await api.client.get(
        f"/api/projects/{pid}/generations", params={"status": "succeeded"}, headers=owner.auth
    )
    assert [g["id"] for g in listed.json()] == [job["id"]]
    assert listed.json()[0]["attempts"] == 1
    picture = await api.client.get(asset["url"], headers=owner.auth)
    assert picture.status_code == 200
    assert picture.headers["content-type"].startswith("image/svg+xml")
    assert picture.headers["x-content-type-options"] == "nosniff"
    assert picture.content == svg
    stranger = await api.register("stranger")
    assert (await api.client.get(asset["url"], headers=stranger.auth)).status_code == 403
    project = (
        await Project.select(Project.storage_bytes).where(Project.id == uuid.UUID(pid)).first()
    )
    assert project is not None
    assert project["storage_bytes"] == len(svg)
    await api.ctx.queue.settle()
    logged = await kinds(job["id"])
    assert logged[:2] == ["generation.queued", "generation.started"]
    assert logged[-1] == "generation.succeeded"
    assert set(logged[2:-1]) == {"generation.progress"}
    assert await credits(owner) == 90


async def test_empty_queue_is_204_and_only_service_keys_may_claim(api: Api) -> None:
    """No job: 204. A user's token: 403; no credentials or a bad key: 401."""
    owner, _, _ = await _setup(api)
    key = await service_key(api)
    assert (await claim(api, key)).status_code == 204
    body = {"worker_id": "w"}
    assert (await api.client.post("/api/worker/claim", json=body)).status_code == 401
    user = await api.client.post("/api/worker/claim", json=body, headers=owner.auth)
    assert user.status_code == 403
    assert user.json()["code"] == "forbidden"
    bad = await api.client.post("/api/worker/claim", json=body, headers=bearer("mbk_nope"))
    assert bad.status_code == 401


async def test_bad_worker_input_is_refused_and_changes_nothing(api: Api) -> None:
    """Out-of-range or mistyped progress, unknown fields or ids, another worker's job: 4xx."""
    owner, pid, room = await _setup(api)
    key, other = await service_key(api), await service_key(api, "other")
    generation = await request(api, owner, pid, room, "terracotta tiles")
    gid = (await claim(api, key)).json()["id"]
    before, events_before = await row(gid), await Event.count()
    cases: list[tuple[str, str, Any, str, int]] = [
        (key, "progress", {"progress": 101}, gid, 400),
        (key, "progress", {"progress": -1}, gid, 400),
        (key, "progress", {"progress": "50"}, gid, 400),
        (key, "progress", {"progress": 5.5}, gid, 400),
        (key, "progress", {"progress": 5, "colour": "red"}, gid, 400),
        (key, "progress", {"progress": 5, "stage": ""}, gid, 400),
        (key, "progress", {"progress": 5, "worker_id": "someone-else"}, gid, 409),
        (key, "progress", {"progress": 5}, str(uuid.uuid4()), 404),
        (other, "progress", {"progress": 5}, gid, 409),
        (other, "complete", {"result": {}}, gid, 409),
        (other, "fail", {"error": "mine now"}, gid, 409),
        (key, "complete", {"result": []}, gid, 400),
        (key, "complete", {"result": {"asset_id": str(uuid.uuid4())}}, gid, 400),
        (key, "complete", {}, gid, 400),
        (key, "fail", {"error": ""}, gid, 400),
        (key, "fail", {"error": "x", "retryable": "yes"}, gid, 400),
        (owner.token, "progress", {"progress": 5}, gid, 403),
    ]
    for who, call, body, target, status in cases:
        answered = await report(api, who, target, call, body)
        assert answered.status_code == status, (call, body, answered.text)
        assert answered.headers["content-type"].startswith("application/problem+json")
    not_image = await api.client.post(
        f"/api/worker/generations/{gid}/asset",
        content=b"<html></html>",
        headers={**bearer(key), "Content-Type": "text/html"},
    )
    assert not_image.status_code == 400
    assert await row(gid) == before
    assert await Event.count() == events_before
    assert generation["id"] == gid


async def test_concurrent_claims_never_share_a_job(api: Api) -> None:
    """Twelve claims racing for seven jobs: seven distinct jobs claimed once, five 204s."""
    owner, pid, room = await _setup(api)
    keys = [await service_key(api, f"w{n}") for n in range(3)]
    for n in range(7):
        await request(api, owner, pid, room, f"chair {n}")
    replies = await asyncio.gather(*(claim(api, keys[n % 3], f"worker-{n}") for n in range(12)))
    claimed = [r.json()["id"] for r in replies if r.status_code == 200]
    assert sorted(r.status_code for r in replies) == [200] * 7 + [204] * 5
    assert len(set(claimed)) == 7
    rows = await Generation.select(Generation.attempts, Generation.status)
    assert all((r["attempts"], r["status"]) == (1, "running") for r in rows)
    assert await Event.count().where(Event.kind == "generation.started") == 7


async def test_claims_are_fair_across_projects(api: Api) -> None:
    """A project with many old jobs does not starve a newer project's single job."""
    owner, busy_pid, busy_room = await _setup(api)
    await CreditLedger.delete().where(CreditLedger.user_id == uuid.UUID(owner.id))
    other = await api.register("other")
    quiet_pid = (await api.project(other, "Quiet"))["id"]
    quiet_room = (
        await api.client.post(
            f"/api/projects/{quiet_pid}/rooms", json={"name": "R"}, headers=other.auth
        )
    ).json()["id"]
    for n in range(5):
        await request(api, owner, busy_pid, busy_room, f"busy {n}")
    quiet = await request(api, other, quiet_pid, quiet_room, "the quiet one")
    key = await service_key(api)
    first = (await claim(api, key)).json()
    second = (await claim(api, key)).json()
    assert first["project_id"] == busy_pid  # oldest waiting job first...
    assert second["id"] == quiet["id"]  # ...then the project not served yet
    # With nothing running, the project served longest ago goes first.
    for job in (first, second):
        await report(api, key, job["id"], "complete", {"result": {}})
    assert (await claim(api, key)).json()["project_id"] == busy_pid


async def test_expired_lease_requeues_then_fails_for_good_with_one_refund(
    database_url: str,
) -> None:
    """Lease lost: the old worker gets 409, the job is retried; past max attempts it fails."""
    app = app_for(database_url, MOODBOARD_GENERATION_MAX_ATTEMPTS="2")
    async with serving(app) as client:
        api = Api(app, client)
        owner, pid, room = await _setup(api)
        key = await service_key(api)
        gid = (await request(api, owner, pid, room, "velvet chair"))["id"]
        assert (await claim(api, key, "first")).json()["id"] == gid
        await expire_lease(gid)
        late = await report(api, key, gid, "progress", {"progress": 10})
        assert late.status_code == 409
        assert late.json()["code"] == "conflict"
        again = (await claim(api, key, "second")).json()  # the claim sweeps first
        assert (again["id"], again["attempts"]) == (gid, 2)
        old = await report(api, key, gid, "progress", {"progress": 10, "worker_id": "first"})
        assert old.status_code == 409
        await expire_lease(gid)
        assert await api.ctx.queue.sweep(api.ctx.notifier) == 1
        assert await api.ctx.queue.sweep(api.ctx.notifier) == 0
        final = await row(gid)
        assert (final["status"], final["attempts"]) == ("failed", 2)
        assert "lease expired" in final["error"]
        assert await refunds(gid) == 1
        assert await credits(owner) == 100
        await _ledger_consistent(owner.id)
        assert (await claim(api, key)).status_code == 204
        assert await kinds(gid) == [
            "generation.queued",
            "generation.started",
            "generation.queued",
            "generation.started",
            "generation.failed",
        ]


async def test_fail_retryable_requeues_and_final_fail_refunds(api: Api) -> None:
    """A retryable failure puts the job back; a final one fails it and refunds once."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    gid = (await request(api, owner, pid, room, "rattan lamp"))["id"]
    await claim(api, key)
    retried = await report(api, key, gid, "fail", {"error": "GPU busy", "retryable": True})
    assert (retried.json()["status"], retried.json()["error"]) == ("queued", "GPU busy")
    await claim(api, key)
    failed = await report(api, key, gid, "fail", {"error": "prompt not drawable"})
    assert failed.json()["status"] == "failed"
    assert await refunds(gid) == 1
    assert await credits(owner) == 100
    again = await report(api, key, gid, "fail", {"error": "twice"})
    assert again.status_code == 409
    assert await refunds(gid) == 1


async def test_cancel_racing_complete_exactly_one_wins(api: Api) -> None:
    """Cancel and complete at once, five times: one wins each time; credits match the winner."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    wins: dict[str, int] = {"canceled": 0, "succeeded": 0}
    for n in range(5):
        gid = (await request(api, owner, pid, room, f"race {n}"))["id"]
        assert (await claim(api, key)).json()["id"] == gid
        canceled, completed = await asyncio.gather(
            api.client.post(f"/api/generations/{gid}/cancel", headers=owner.auth),
            report(api, key, gid, "complete", {"result": {"n": n}}),
        )
        assert sorted([canceled.status_code, completed.status_code]) == [200, 409]
        status = (await row(gid))["status"]
        wins[status] += 1
        assert await refunds(gid) == (1 if status == "canceled" else 0)
        assert (await kinds(gid))[-1] == f"generation.{status}"
    assert await credits(owner) == 100 - 10 * wins["succeeded"]
    await _ledger_consistent(owner.id)


async def test_cancel_before_completion_stops_the_worker(api: Api) -> None:
    """A job canceled while running refunds once; its worker's next report is 409."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    gid = (await request(api, owner, pid, room, "linen curtains"))["id"]
    await claim(api, key)
    canceled = await api.client.post(f"/api/generations/{gid}/cancel", headers=owner.auth)
    assert canceled.status_code == 200
    lost = await report(api, key, gid, "progress", {"progress": 40})
    assert lost.status_code == 409
    assert await refunds(gid) == 1
    assert await credits(owner) == 100


async def test_progress_events_are_coalesced_latest_wins(api: Api) -> None:
    """Fifty quick reports make far fewer events; the last value always reaches the log."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    gid = (await request(api, owner, pid, room, "jute rug"))["id"]
    await claim(api, key)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for progress in range(1, 51):
        answered = await report(api, key, gid, "progress", {"progress": progress, "stage": "s"})
        assert answered.status_code == 200
    elapsed = loop.time() - began
    await api.ctx.queue.settle()
    events = (
        await Event.select(Event.data, Event.at)
        .where((Event.entity_id == uuid.UUID(gid)) & (Event.kind == "generation.progress"))
        .order_by(Event.seq)
        .output(load_json=True)
    )
    interval = api.ctx.queue.progress_interval_s
    assert 1 < len(events) <= 2 + (elapsed + interval) / interval
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in itertools.pairwise(events)]
    assert min(gaps) >= interval * 0.9  # at most one progress event per interval (5/s)
    assert events[-1]["data"]["progress"] == 50  # latest wins, never dropped


async def test_an_asset_past_the_storage_quota_is_refused(api: Api) -> None:
    """A picture that does not fit the project's storage: 413, nothing recorded or counted."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    gid = (await request(api, owner, pid, room, "marble bench"))["id"]
    await claim(api, key)
    await Project.update({Project.storage_quota_bytes: 100}).where(Project.id == uuid.UUID(pid))
    stored = await api.client.post(
        f"/api/worker/generations/{gid}/asset",
        content=b"<svg xmlns='http://www.w3.org/2000/svg'>" + b" " * 200 + b"</svg>",
        headers={**bearer(key), "Content-Type": "image/svg+xml"},
    )
    assert stored.status_code == 413
    assert stored.json()["code"] == "too_large"
    assert await ProjectResource.count().where(ProjectResource.project_id == uuid.UUID(pid)) == 0
    project = (
        await Project.select(Project.storage_bytes).where(Project.id == uuid.UUID(pid)).first()
    )
    assert project == {"storage_bytes": 0}


async def test_jobs_of_a_deleted_project_are_canceled_and_refunded(api: Api) -> None:
    """Deleting a project cancels its queued and running jobs, each refunded once."""
    owner, pid, room = await _setup(api)
    key = await service_key(api)
    running = (await request(api, owner, pid, room, "brick wall"))["id"]
    waiting = (await request(api, owner, pid, room, "steel stool"))["id"]
    assert (await claim(api, key)).json()["id"] == running
    deleted = await api.client.delete(f"/api/projects/{pid}", headers=owner.auth)
    assert deleted.status_code == 204
    assert (await claim(api, key)).status_code == 204  # the claim's sweep cancels them
    for gid in (running, waiting):
        assert (await row(gid))["status"] == "canceled"
        assert await refunds(gid) == 1
    assert await credits(owner) == 100
    assert (await report(api, key, running, "progress", {"progress": 5})).status_code == 409
    await api.ctx.queue.sweep(api.ctx.notifier)
    assert await refunds(running) == 1
    await _ledger_consistent(owner.id)


async def test_an_erased_requesters_failed_job_still_fails(api: Api) -> None:
    """A job whose requester erased their account fails for good without a refund."""
    owner, pid, room = await _setup(api)
    editor = await api.register("editor")
    await api.add_member(owner, pid, editor, "editor")
    key = await service_key(api)
    gid = (await request(api, editor, pid, room, "wicker basket"))["id"]
    await claim(api, key)
    erased = await api.client.request(
        "DELETE", "/api/me", json={"password": PASSWORD}, headers=editor.auth
    )
    assert erased.status_code == 204
    failed = await report(api, key, gid, "fail", {"error": "no"})
    assert failed.status_code == 200
    assert failed.json()["status"] == "failed"
    assert await refunds(gid) == 0
