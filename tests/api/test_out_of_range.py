"""Numbers no field can hold and bytes that are not UTF-8 are client errors, never a 500.

Issue 19 item 4: a 400-digit integer for an item's ``x`` answered 500 (the
float conversion overflowed), and a JSON body that is not valid UTF-8
answered 500 to anonymous callers (the decoder's error escaped the error
mapping). Both must be a 400 problem with ``code: bad_request``.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

PROBLEM_JSON = "application/problem+json"
HUGE = "1" + "0" * 400


async def _room(api: Api) -> tuple[dict[str, str], str, str]:
    owner = await api.register("owner")
    project = await api.project(owner)
    response = await api.client.post(
        f"/api/projects/{project['id']}/rooms", json={"name": "Hall"}, headers=owner.auth
    )
    assert response.status_code == 201, response.text
    return owner.auth, project["id"], response.json()["id"]


@pytest.mark.parametrize("field", ["x", "y", "w", "rotation", "z"])
async def test_a_400_digit_number_for_a_coordinate_is_a_400(api: Api, field: str) -> None:
    """An item field given a number no float can hold is refused naming the field."""
    auth, pid, rid = await _room(api)
    for number in (HUGE, "-" + HUGE):
        body = f'{{"kind": "note", "{field}": {number}}}'
        response = await api.client.post(
            f"/api/projects/{pid}/rooms/{rid}/items",
            content=body.encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["code"] == "bad_request"
        assert response.json()["detail"].startswith(field)


@pytest.mark.parametrize(("entity", "field"), [("room", "position"), ("item", "x"), ("item", "h")])
async def test_a_400_digit_number_in_an_update_is_a_400(api: Api, entity: str, field: str) -> None:
    """A PATCH setting a number no float can hold is refused naming the field."""
    auth, pid, rid = await _room(api)
    path = f"/api/projects/{pid}/rooms/{rid}"
    if entity == "item":
        created = await api.client.post(f"{path}/items", json={"kind": "note"}, headers=auth)
        path = f"/api/projects/{pid}/items/{created.json()['id']}"
    for number in (HUGE, "-" + HUGE):
        response = await api.client.patch(
            path,
            content=f'{{"base_version": 1, "{field}": {number}}}'.encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), response.text
        assert response.json()["code"] == "bad_request"
        assert response.json()["detail"].startswith(field)


@pytest.mark.parametrize(
    "path", ["/api/auth/login", "/api/auth/register", "/api/invitations/x/accept"]
)
async def test_a_body_that_is_not_utf8_is_a_400_for_anyone(api: Api, path: str) -> None:
    """Invalid UTF-8 inside a JSON string is a bad request, signed in or not."""
    body = b'{"email": "a\xff\xfe@example.com", "password": "x", "name": "n"}'
    response = await api.client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 401, 404), response.text
    if response.status_code == 400:
        assert response.json()["code"] == "bad_request"


async def test_invalid_utf8_in_an_item_body_is_a_400(api: Api) -> None:
    """A signed-in caller's body with bytes that are not UTF-8 is refused, not a 500."""
    auth, pid, rid = await _room(api)
    response = await api.client.post(
        f"/api/projects/{pid}/rooms/{rid}/items",
        content=b'{"kind": "note", "data": {"t": "\xc3\x28"}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "bad_request"


async def test_huge_numbers_inside_data_are_not_a_500(api: Api) -> None:
    """A 400-digit integer inside an item's data is stored or refused, never a 500."""
    auth, pid, rid = await _room(api)
    response = await api.client.post(
        f"/api/projects/{pid}/rooms/{rid}/items",
        content=f'{{"kind": "note", "data": {{"n": {HUGE}, "m": [-{HUGE}]}}}}'.encode(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code in (201, 400), response.text


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc80x", "a\\ud83d"])
async def test_a_lone_surrogate_in_a_stored_string_is_a_400(api: Api, escape: str) -> None:
    """A JSON escape of half a UTF-16 pair (no UTF-8 can hold it) is refused, never a 500."""
    auth, pid, rid = await _room(api)
    for path, body in [
        (f"/api/projects/{pid}/rooms", f'{{"name": "{escape}"}}'),
        (
            f"/api/projects/{pid}/rooms/{rid}/items",
            f'{{"kind": "note", "data": {{"t": "{escape}"}}}}',
        ),
        (
            f"/api/projects/{pid}/rooms/{rid}/items",
            f'{{"kind": "note", "data": {{"{escape}": 1}}}}',
        ),
    ]:
        response = await api.client.post(
            path, content=body.encode(), headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["code"] == "bad_request"
