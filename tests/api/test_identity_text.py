"""Display names refuse bidirectional controls; e-mail addresses have one canonical form.

Issue 19 item 8: a display name could hold U+202E (RIGHT-TO-LEFT OVERRIDE)
and its kin, which make a name shown to other members read as something
else ("Bob\u202eresu nimda" shows as "Bobadmin user"); and an address was
compared as typed, so the same address in two Unicode forms (a precomposed
"é" and "e" + U+0301) made two accounts. Now names with bidirectional or
other control characters are refused (422, naming the field), and
addresses are stored and compared NFC-normalised and lower-cased.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import PASSWORD, Api

BIDI_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
                 "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]  # fmt: skip


@pytest.mark.parametrize("control", [*BIDI_CONTROLS, "\x07", "\x1b"])
async def test_a_name_with_a_bidi_or_control_character_is_refused(api: Api, control: str) -> None:
    """Sign-up with such a name is refused naming the field; no account is made."""
    email = f"bidi-{ord(control):x}@example.com"
    response = await api.client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": f"Bob{control}resu nimda"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] == "bad_request"
    assert response.json()["detail"].startswith("name")
    login = await api.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 401


async def test_names_in_any_script_are_still_welcome(api: Api) -> None:
    """Right-to-left and accented names without control characters sign up as ever."""
    for n, name in enumerate(["مريم", "שרה", "Zoë Ångström", "李雷", "Jean-Luc O'Neil"]):
        response = await api.client.post(
            "/api/auth/register",
            json={"email": f"script-{n}@example.com", "password": PASSWORD, "name": name},
        )
        assert response.status_code == 201, response.text
        assert response.json()["user"]["name"] == name


async def test_one_address_in_two_unicode_forms_is_one_account(api: Api) -> None:
    """Stored NFC and lower-case: the decomposed, upper-case form is taken and logs in."""
    composed = "Ren\u00e9e@Example.COM"
    decomposed = "RENE\u0301E@example.com"
    first = await api.client.post(
        "/api/auth/register", json={"email": composed, "password": PASSWORD, "name": "Renée"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["user"]["email"] == "ren\u00e9e@example.com"
    second = await api.client.post(
        "/api/auth/register", json={"email": decomposed, "password": PASSWORD, "name": "Renée"}
    )
    assert second.status_code == 409, second.text
    login = await api.client.post(
        "/api/auth/login", json={"email": decomposed, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
