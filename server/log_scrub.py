"""The last step of every log line: no token leaves the process, whoever logged it.

docs/protocol.md §2: "Tokens of any kind (sessions, invitations, keys) never appear
in a log line, whether they came in a header, a path or a query string."
server/log.py already redacts fields by name; that misses a token inside a
value: our access line's path (``POST /api/invitations/{token}/accept``),
uvicorn's WebSocket "accepted" line (it prints the query string), a library's
message or traceback that quotes a header. So the handler's formatter is
wrapped (:class:`ScrubbingFormatter`) and the finished text of every line, from
structlog or any standard-library logger (uvicorn, litestar, websockets,
piccolo), is scrubbed of:

- token-shaped values: our prefixes (``mbs_`` session, ``mbk_`` service key,
  ``mbi_`` invitation) followed by their random part;
- the path segment of ``/api/invitations/{token}`` whatever it holds;
- the values of secret-named query parameters and headers (``token=``,
  ``Authorization: Bearer ...``, ``Cookie: ...``);
- the payload of the frames websockets prints at debug level (it shortens a
  long frame by cutting its middle, which leaves a token's tail in view);
- the session cookie's value.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# Applied in order; each keeps its lead-in (group "keep") and replaces the value. Each
# pattern has the lowercase substrings without one of which it cannot match: a pattern
# runs only on a line that holds one (a substring test costs about 0.1 µs; the patterns
# all together about 30 µs on a typical 300-character line, on every log line).
_SENSITIVE_PARAMS = r"(?:access_token|token|api_key|apikey|key|secret|password|session|auth|sig)"
_Scrub = tuple[tuple[str, ...], re.Pattern[str], str]
_SCRUBS: tuple[_Scrub, ...] = (
    # Tokens by their shape: a prefix of server/access/tokens.py and >= 16 random characters.
    (
        ("mbs_", "mbk_", "mbi_"),
        re.compile(r"(?<![A-Za-z0-9])(?P<keep>mb[ski]_)[A-Za-z0-9_-]{16,}"),
        rf"\g<keep>{REDACTED}",
    ),
    # The invitation accept/lookup path carries the token itself, whatever its shape.
    (
        ("/api/invitations/",),
        re.compile(r"(?P<keep>/api/invitations/)[^/\s\"'?#\\]+"),
        rf"\g<keep>{REDACTED}",
    ),
    # Query parameters with a secret name (?token=..., &access_token=...): every name
    # ends in one of the triggers' words.
    (
        ("token=", "key=", "secret=", "password=", "session=", "auth=", "sig="),
        re.compile(rf"(?P<keep>[?&]{_SENSITIVE_PARAMS}=)[^&\s\"'#\\]+", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # Authorization headers: "Bearer <x>", "Basic <x>" (not the words in a sentence).
    (
        ("bearer", "basic"),
        re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # Cookie and Set-Cookie headers as text (a repr of headers, a traceback).
    (
        ("cookie",),
        re.compile(r"(?P<keep>\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)[^\"'\n\\]+", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # websockets' debug lines print frames ("< TEXT '{...}' [76 bytes]"), cut in the
    # middle when long: the cut hides the field name but shows a token's tail.
    (
        ("< text ", "> text ", "< binary ", "> binary ", "< cont ", "> cont "),
        re.compile(
            r"(?P<keep>[<>] (?:TEXT|BINARY|CONT) ).*?(?= \[(?:(?:text|binary), )?\d+ bytes?\b)"
        ),
        rf"\g<keep>{REDACTED}",
    ),
    # The session cookie wherever it is quoted.
    (
        ("moodboard_session=",),
        re.compile(r"(?P<keep>moodboard_session=)[^;\s\"'\\]+"),
        rf"\g<keep>{REDACTED}",
    ),
)


def scrub(text: str) -> str:
    """``text`` with every token and secret-carrying value replaced by ``[redacted]``."""
    lowered = text.lower()
    for triggers, pattern, replacement in _SCRUBS:
        for trigger in triggers:  # a plain loop: any() over a generator costs 5x as much
            if trigger in lowered:
                text, count = pattern.subn(replacement, text)
                if count:
                    lowered = text.lower()
                break
    return text


class ScrubbingFormatter(logging.Formatter):
    """Formats with ``inner``, then scrubs the finished line (server/log.py installs it)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self._inner.format(record))
