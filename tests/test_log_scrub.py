"""The scrub every log line goes through: tokens out, the rest of the line kept (pure)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.access.tokens import new_token
from server.log_scrub import _SCRUBS, ScrubbingFormatter, scrub

SESSION, _ = new_token("session")
KEY, _ = new_token("service")
INVITATION, _ = new_token("invitation")


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'{{"path": "/api/invitations/{INVITATION}/accept", "status": 401}}', INVITATION),
        ('{"path": "/api/invitations/not-token-shaped-at-all/accept"}', "not-token-shaped"),
        (f'127.0.0.1:5 - "WebSocket /ws?token={SESSION}" [accepted]', SESSION),
        ("GET /api/me?access_token=opaque-secret-value&x=1", "opaque-secret-value"),
        (f"Authorization: Bearer {KEY}", KEY),
        ("authorization: bearer abcdefghijklmnop", "abcdefghijklmnop"),
        (f"{{'cookie': 'moodboard_session={SESSION}.c2lnbmF0dXJl'}}", "c2lnbmF0dXJl"),
        (f"Set-Cookie: moodboard_session={SESSION}.c2lnbmF0dXJl; Path=/", "c2lnbmF0dXJl"),
        (
            f"""< TEXT '{{"type": "auth", "token": "...{SESSION[-21:]}"}}' [76 bytes]""",
            SESSION[-21:],
        ),
        (f"{KEY} in the middle of a sentence", KEY[4:]),
    ],
    ids=[  # fixed names: the tokens are new each run (xdist compares the collections)
        "invitation-path",
        "invitation-path-any-shape",
        "ws-query-token",
        "access-token-param",
        "bearer-key",
        "bearer-lowercase",
        "cookie-repr",
        "set-cookie",
        "ws-debug-frame",
        "key-in-a-sentence",
    ],
)
def test_secrets_are_scrubbed_wherever_they_appear(line: str, secret: str) -> None:
    """Token-shaped values, invitation paths, secret query values, headers, frames: redacted."""
    scrubbed = scrub(line)
    assert secret not in scrubbed
    assert "[redacted]" in scrubbed


@pytest.mark.parametrize(
    "line",
    [
        '{"method": "GET", "path": "/api/projects/1b2c/events", "status": 200}',
        "sign in: send a Bearer token or the session cookie",
        "GET /api/projects/p/events?after=5&limit=10",
        '{"path": "/api/projects/3f2a/invitations/7c1d", "status": 204}',
    ],
)
def test_lines_without_secrets_are_left_alone(line: str) -> None:
    """Ordinary lines (ids, paths, plain words about tokens) come out unchanged."""
    assert scrub(line) == line


def test_the_formatter_scrubs_what_the_inner_one_made() -> None:
    """Whatever the wrapped formatter renders, the handler writes it scrubbed."""
    formatter = ScrubbingFormatter(logging.Formatter("%(name)s %(message)s"))
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '"WebSocket /ws?token=%s"', (SESSION,), None
    )
    assert formatter.format(record) == 'uvicorn.error "WebSocket /ws?token=[redacted]"'


# Pieces the patterns look for, in any case, mixed into arbitrary text.
_PIECES = [
    "mbs_",
    "mbk_",
    "MBI_",
    "/api/invitations/",
    "?",
    "&",
    "token=",
    "Api_Key=",
    "SECRET=",
    "password=",
    "session=",
    "auth=",
    "sig=",
    "Bearer ",
    "basic\t",
    "Cookie",
    "set-cookie: ",
    "'",
    '"',
    "=",
    ":",
    "< TEXT ",
    "> BINARY ",
    "< CONT ",
    " [76 bytes]",
    " [text, 9 bytes]",
    "moodboard_session=",
    ";",
    "\n",
    "\\",
    "/",
    " ",
    "abcdefghijklmnopqrstuvwxyz0123456789",
]


def _every_pattern(text: str) -> str:
    """The scrub without its shortcut: every pattern on every line."""
    for _triggers, pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


@settings(max_examples=500)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=24).map("".join)
)
def test_the_shortcut_never_skips_a_pattern_that_would_match(line: str) -> None:
    """A pattern skipped for want of its trigger words changes nothing when run (any line)."""
    assert scrub(line) == _every_pattern(line)
