"""A user's picture upload, POST /api/projects/{pid}/resources, on both engines (issue 21)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from server.projects.tables import Project, ProjectResource
from tests.api.conftest import Api
from tests.pictures import GIF, JPEG, WEBP, png

PICTURES = {"image/png": png(), "image/jpeg": JPEG, "image/webp": WEBP, "image/gif": GIF}


def _upload_path(pid: str) -> str:
    return f"/api/projects/{pid}/resources"


async def test_editors_upload_each_picture_type_and_readers_get_it_back(api: Api) -> None:
    """PNG, JPEG, WebP, GIF: 201 as the contract says; served back typed and cached, to readers."""
    owner, editor, viewer, stranger = [
        await api.register(n) for n in ("owner", "editor", "viewer", "stranger")
    ]
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, editor, "editor")
    await api.add_member(owner, pid, viewer, "viewer")
    uploaded = []
    for content_type, data in PICTURES.items():
        response = await api.client.post(
            _upload_path(pid), content=data, headers={**editor.auth, "Content-Type": content_type}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("project_id", "content_type", "size")} == {
            "project_id": pid,
            "content_type": content_type,
            "size": len(data),
        }
        assert body["url"] == f"{_upload_path(pid)}/{body['id']}"
        assert len(body["sha256"]) == 64
        uploaded.append((body, data))
    # A parameter on the type is fine; the owner may upload too. The same bytes again are
    # the resource already stored: one file, counted once.
    same = await api.client.post(
        _upload_path(pid),
        content=GIF,
        headers={**owner.auth, "Content-Type": "Image/GIF; charset=binary"},
    )
    assert same.status_code == 201, same.text
    assert same.json()["id"] == uploaded[3][0]["id"]

    for body, data in uploaded:
        picture = await api.client.get(body["url"], headers=viewer.auth)
        assert picture.status_code == 200
        assert picture.content == data
        assert picture.headers["content-type"] == body["content_type"]
        assert picture.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in picture.headers["cache-control"]
        again = await api.client.get(
            body["url"], headers={**viewer.auth, "If-None-Match": picture.headers["etag"]}
        )
        assert (again.status_code, again.content) == (304, b"")
        assert (await api.client.get(body["url"], headers=stranger.auth)).status_code == 403
        assert (await api.client.get(body["url"])).status_code == 401
    # Another project's id in the path: as unknown as a made-up id.
    other = (await api.project(owner, "Other"))["id"]
    elsewhere = f"{_upload_path(other)}/{uploaded[0][0]['id']}"
    assert (await api.client.get(elsewhere, headers=owner.auth)).status_code == 404

    total = sum(len(d) for _, d in uploaded)
    row = await Project.select(Project.storage_bytes).where(Project.id == uuid.UUID(pid)).first()
    assert row == {"storage_bytes": total}
    # An image item shows a picture by data.resource_id.
    room = await api.client.post(
        f"/api/projects/{pid}/rooms",
        json={"name": "Hall", "room_type": "other"},
        headers=editor.auth,
    )
    item = await api.client.post(
        f"/api/projects/{pid}/rooms/{room.json()['id']}/items",
        json={"kind": "image", "data": {"resource_id": uploaded[0][0]["id"]}},
        headers=editor.auth,
    )
    assert item.status_code == 201, item.text


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_every_bad_upload_is_refused_and_nothing_is_stored(api: Api) -> None:
    """Wrong type, bytes not of that type, empty, too large, over quota, viewer, stranger."""
    owner, viewer, stranger = [await api.register(n) for n in ("owner", "viewer", "stranger")]
    pid = (await api.project(owner))["id"]
    await api.add_member(owner, pid, viewer, "viewer")
    ctx = api.ctx
    limit = 2048
    api.app.state.ctx = dataclasses.replace(
        ctx, settings=dataclasses.replace(ctx.settings, storage_max_upload_bytes=limit)
    )
    big = png(40, 40) + b"\x00" * limit  # a PNG start, past the limit
    cases = [
        # (who, content type, body, status, detail mentions)
        (owner, "text/plain", b"hello", 415, "content-type"),
        (owner, "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "content-type"),
        (owner, "", png(), 415, "content-type"),
        (owner, "image/png", JPEG, 415, "image/jpeg picture, not image/png"),
        (owner, "image/jpeg", b"<html><script>alert(1)</script></html>", 415, "not a picture"),
        (owner, "image/gif", png(), 415, "image/png picture, not image/gif"),
        (owner, "image/webp", b"RIFF\x00\x00\x00\x00WAVEfmt ", 415, "not a picture"),
        (owner, "image/png", b"", 400, "empty"),
        (owner, "image/png", big, 413, "limit"),
        (viewer, "image/png", png(), 403, "viewer"),
        (stranger, "image/png", png(), 403, ""),
    ]
    for who, content_type, body, status, mentions in cases:
        response = await api.client.post(
            _upload_path(pid), content=body, headers={**who.auth, "Content-Type": content_type}
        )
        assert response.status_code == status, (content_type, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        expected_code = {400: "bad_request", 403: "forbidden", 413: "too_large"}
        assert problem["code"] == expected_code.get(status, "bad_request")
        assert mentions in problem["detail"], problem
    # Too large without a Content-Length (chunked): refused as the bytes pass the limit.
    streamed = await api.client.post(
        _upload_path(pid),
        content=_chunks(big, 512),
        headers={**owner.auth, "Content-Type": "image/png"},
    )
    assert (streamed.status_code, streamed.json()["code"]) == (413, "too_large")
    # Unknown project and no credentials.
    unknown = await api.client.post(
        _upload_path(str(uuid.uuid4())),
        content=png(),
        headers={**owner.auth, "Content-Type": "image/png"},
    )
    assert unknown.status_code == 403
    anonymous = await api.client.post(
        _upload_path(pid), content=png(), headers={"Content-Type": "image/png"}
    )
    assert anonymous.status_code == 401
    # Over the project's quota: 413, nothing written, recorded or counted.
    await Project.update({Project.storage_quota_bytes: len(png()) - 1}).where(
        Project.id == uuid.UUID(pid)
    )
    over = await api.client.post(
        _upload_path(pid), content=png(), headers={**owner.auth, "Content-Type": "image/png"}
    )
    assert (over.status_code, over.json()["code"]) == (413, "too_large")
    assert "quota" in over.json()["detail"]

    assert await ProjectResource.count().where(ProjectResource.project_id == uuid.UUID(pid)) == 0
    row = await Project.select(Project.storage_bytes).where(Project.id == uuid.UUID(pid)).first()
    assert row == {"storage_bytes": 0}
    assert not (Path(ctx.settings.storage_dir) / pid).exists()
    # The quota raised again, the same picture goes in.
    await Project.update({Project.storage_quota_bytes: 10_000}).where(Project.id == uuid.UUID(pid))
    fits = await api.client.post(
        _upload_path(pid), content=png(), headers={**owner.auth, "Content-Type": "image/png"}
    )
    assert fits.status_code == 201, fits.text
