"""Creating users and admins: signup credits with their ledger row, unique emails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.access.passwords import verify_password
from server.access.tables import AppUser
from server.access.users import create_or_promote_admin, create_user
from server.credits.tables import CreditLedger
from server.errors import Conflict, ValidationFailed

PASSWORD = "correct horse battery"


async def test_new_user_gets_signup_credits_and_a_ledger_row(engine: Any) -> None:
    """The balance and its ledger row are written together; the password only as a hash."""
    user = await create_user(
        engine, email=" Ada@Example.COM ", password=PASSWORD, name="Ada", signup_credits=100
    )
    row = await AppUser.select().where(AppUser.id == user.id).first()
    assert row is not None
    assert (row["email"], row["credits"], row["role"]) == ("ada@example.com", 100, "user")
    assert PASSWORD not in row["password_hash"]
    assert verify_password(row["password_hash"], PASSWORD)
    ledger = await CreditLedger.select(
        CreditLedger.delta, CreditLedger.balance, CreditLedger.reason
    ).where(CreditLedger.user_id == user.id)
    assert ledger == [{"delta": 100, "balance": 100, "reason": "signup"}]


async def test_email_taken_even_when_racing(engine: Any) -> None:
    """Five sign-ups with one address at once: one account, four conflicts."""
    results = await asyncio.gather(
        *(
            create_user(
                engine, email="same@example.com", password=PASSWORD, name="X", signup_credits=5
            )
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert await AppUser.count() == 1
    assert await CreditLedger.count() == 1


@pytest.mark.parametrize(
    ("email", "password", "name", "field"),
    [
        ("not-an-email", PASSWORD, "X", "email"),
        ("a@example.com", "short", "X", "password"),
        ("a@example.com", "1234567890123", "X", "password"),
        ("a@example.com", PASSWORD, "  ", "name"),
        ("a@example.com", PASSWORD, "n" * 201, "name"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    engine: Any, email: str, password: str, name: str, field: str
) -> None:
    """Invalid email, weak password or bad name: ValidationFailed naming it; no row."""
    with pytest.raises(ValidationFailed) as caught:
        await create_user(engine, email=email, password=password, name=name, signup_credits=1)
    assert caught.value.extra["field"] == field
    assert caught.value.detail.startswith(f"{field}: ")
    assert await AppUser.count() == 0


async def test_create_admin_creates_then_promotes(engine: Any) -> None:
    """create-admin makes a new admin, or promotes a user and leaves their password alone."""
    user = await create_user(
        engine, email="bo@example.com", password=PASSWORD, name="Bo", signup_credits=0
    )
    promoted = await create_or_promote_admin(
        engine, email="BO@example.com", password="another password 1", signup_credits=0
    )
    assert (promoted.id, promoted.created, promoted.role) == (user.id, False, "admin")
    row = await AppUser.select().where(AppUser.id == user.id).first()
    assert row is not None
    assert row["role"] == "admin"
    assert verify_password(row["password_hash"], PASSWORD)

    fresh = await create_or_promote_admin(
        engine, email="root@example.com", password=PASSWORD, signup_credits=7
    )
    assert fresh.created
    assert fresh.role == "admin"
    assert await AppUser.count().where(AppUser.role == "admin") == 2
