"""Creating users and admins: the profile row, the signup grant and its ledger row, together."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine

from server.access.hashing import hash_in_pool
from server.access.passwords import weakness
from server.access.tables import AppUser
from server.credits.tables import CreditLedger
from server.db.engine import is_unique_violation, write_transaction
from server.errors import Conflict, ValidationFailed
from server.types import PlatformRole, UserId

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class NewUser:
    """What creating or promoting a user produced."""

    id: UserId
    email: str
    role: PlatformRole
    created: bool


def canonical_email(email: str) -> str:
    """The one form an address is stored and compared in: stripped, lower-cased, NFC.

    Without NFC, "é" typed precomposed and as "e" + U+0301 would be two addresses
    (two accounts for one mailbox, an invitation that matches neither).
    """
    return unicodedata.normalize("NFC", email.strip().lower())


def normalize_email(email: str) -> str:
    """:func:`canonical_email`; raises ValidationFailed when it is not an address."""
    value = canonical_email(email)
    if len(value) > 320 or not _EMAIL.match(value):
        raise ValidationFailed("email: not a valid e-mail address", field="email")
    return value


# Characters that reorder or hide the text around them: a name shown to other members
# must read as what it is ("Bob\u202eresu nimda" displays as "Bobadmin user").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def clean_display_name(name: str) -> str:
    """A user's display name: 1..200 characters, no bidirectional or other control character.

    Raises:
        ValidationFailed: naming the field.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(f"name: must be 1..{MAX_NAME} characters", field="name")
    for char in name:
        if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            raise ValidationFailed(
                f"name: must not contain control characters (U+{ord(char):04X})", field="name"
            )
    return name


def _check_password(password: str) -> None:
    problem = weakness(password)
    if problem is not None:
        raise ValidationFailed(f"password: {problem}", field="password")


async def create_user(
    engine: Engine[Any],
    *,
    email: str,
    password: str,
    name: str,
    signup_credits: int,
    role: PlatformRole = "user",
) -> NewUser:
    """Insert a user with its signup credits and their ledger row, in one transaction.

    Raises:
        ValidationFailed: bad email, weak password or bad name (names the field).
        Conflict: the email is taken.
    """
    email = normalize_email(email)
    _check_password(password)
    name = clean_display_name(name)
    taken = Conflict("email: an account with this e-mail already exists", field="email")
    if await AppUser.exists().where(AppUser.email == email):
        raise taken  # cheap, before the slow hash (checked again when inserting)
    # Slow on purpose (~200 ms): off the event loop, and outside the transaction.
    password_hash = await hash_in_pool(password)
    user_id = UserId(uuid.uuid4())
    try:
        await _insert_user(engine, user_id, email, name, password_hash, role, signup_credits)
    except Exception as exc:
        if is_unique_violation(exc):  # two sign-ups with one address raced
            raise taken from None
        raise
    return NewUser(id=user_id, email=email, role=role, created=True)


async def _insert_user(
    engine: Engine[Any],
    user_id: UserId,
    email: str,
    name: str,
    password_hash: str,
    role: PlatformRole,
    signup_credits: int,
) -> None:
    async with write_transaction(engine):
        if await AppUser.exists().where(AppUser.email == email):
            raise Conflict("email: an account with this e-mail already exists", field="email")
        await AppUser.insert(
            AppUser(
                id=user_id,
                email=email,
                name=name,
                password_hash=password_hash,
                role=role,
                credits=signup_credits,
            )
        )
        if signup_credits:
            await CreditLedger.insert(
                CreditLedger(
                    user_id=user_id, delta=signup_credits, balance=signup_credits, reason="signup"
                )
            )


async def create_or_promote_admin(
    engine: Engine[Any], *, email: str, password: str, signup_credits: int
) -> NewUser:
    """``moodboard create-admin``: create a platform admin, or promote the existing user.

    An existing user keeps their password (the one given is ignored, so an
    operator cannot silently take over an account); only their role changes.
    """
    normalized = normalize_email(email)
    async with write_transaction(engine):
        existing = (
            await AppUser.select(AppUser.id)
            .where((AppUser.email == normalized) & AppUser.deleted_at.is_null())
            .first()
        )
        if existing is not None:
            await AppUser.update(
                {AppUser.role: "admin", AppUser.updated_at: datetime.now(UTC)}
            ).where(AppUser.id == existing["id"])
            return NewUser(id=existing["id"], email=normalized, role="admin", created=False)
    return await create_user(
        engine,
        email=normalized,
        password=password,
        name=normalized.split("@", 1)[0],
        signup_credits=signup_credits,
        role="admin",
    )
