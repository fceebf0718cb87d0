"""Bearer secrets: 256-bit random tokens, shown once, stored only as SHA-256 hashes.

A fast hash is right here (unlike passwords): the tokens carry 256 bits of
entropy, so there is nothing to brute-force, and every request hashes one.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

TokenKind = Literal["session", "service", "invitation"]
_PREFIX: dict[TokenKind, str] = {"session": "mbs_", "service": "mbk_", "invitation": "mbi_"}
TOKEN_BYTES = 32  # 256 bits


def new_token(kind: TokenKind) -> tuple[str, str]:
    """A fresh token of ``kind`` and the hash to store: ``(token, token_hash)``.

    The prefix tells a leaked secret's kind at a glance (and to secret scanners).
    """
    token = _PREFIX[kind] + secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """The hex SHA-256 of ``token``: what the database keeps and looks up."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_kind(token: str) -> TokenKind | None:
    """Which kind of token this looks like, from its prefix."""
    for kind, prefix in _PREFIX.items():
        if token.startswith(prefix):
            return kind
    return None
