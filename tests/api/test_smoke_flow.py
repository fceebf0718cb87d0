"""The main REST flow works end to end on both engines."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_register_create_share_and_patch(api: Api) -> None:
    """Sign up, create a project, add an editor who patches it, see it in both lists."""
    owner = await api.register("owner")
    editor = await api.register("editor")
    project = await api.project(owner)
    assert (project["version"], project["seq"]) == (1, 2)  # project.created, member.created
    await api.add_member(owner, project["id"], editor, "editor")
    patched = await api.client.patch(
        f"/api/projects/{project['id']}",
        json={"base_version": 1, "name": "Flat, renamed"},
        headers=editor.auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Flat, renamed"
    assert patched.json()["version"] == 2
    listed = await api.client.get("/api/projects", headers=editor.auth)
    assert [(p["id"], p["role"]) for p in listed.json()] == [(project["id"], "editor")]
