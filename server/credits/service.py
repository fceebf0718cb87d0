"""Credit balances: every change is one conditional UPDATE plus its ledger row.

``UPDATE app_user SET credits = credits + delta WHERE id = $1 AND credits + delta >= 0``
is atomic on both engines: concurrent spenders serialise on the row, and one
that would overdraw matches no row. A balance never goes below zero (the CHECK
constraint backs it up) and the ledger's deltas always add up to the balance.
"""

from __future__ import annotations

import uuid
from typing import Any

from piccolo.engine.base import Engine

from server import metrics
from server.access.tables import AppUser
from server.credits.tables import CreditLedger
from server.db.engine import write_transaction
from server.errors import NotFound, PaymentRequired, ValidationFailed
from server.timestamps import rfc3339
from server.types import UserId

MAX_REASON = 256  # credit_ledger.reason
MAX_BALANCE = 2**31 - 1  # balances are 32-bit INTEGER columns on PostgreSQL


class InsufficientCredits(PaymentRequired):
    """The balance does not cover the amount (402)."""


async def apply_change(
    user_id: UserId,
    delta: int,
    reason: str,
    *,
    actor_id: uuid.UUID | None = None,
    generation_id: uuid.UUID | None = None,
) -> int:
    """Change a balance by ``delta`` and write its ledger row; call inside a transaction.

    Returns the new balance. Raises InsufficientCredits when it would go below
    zero, ValidationFailed when it would pass MAX_BALANCE, and NotFound for an
    unknown (or erased) user; nothing is written then.
    """
    matches = (
        (AppUser.id == user_id)
        & AppUser.deleted_at.is_null()
        & (AppUser.credits >= -delta)  # i.e. credits + delta >= 0
    )
    if delta > 0:  # only then: MAX_BALANCE - delta must itself fit in 32 bits
        matches &= AppUser.credits <= MAX_BALANCE - delta
    rows = (
        await AppUser.update({AppUser.credits: AppUser.credits + delta})
        .where(matches)
        .returning(AppUser.credits)
    )
    if not rows:
        if not await AppUser.exists().where((AppUser.id == user_id) & AppUser.deleted_at.is_null()):
            raise NotFound("no such user")
        if delta > 0:
            raise ValidationFailed(f"delta: the balance would exceed {MAX_BALANCE}", field="delta")
        raise InsufficientCredits(f"not enough credits: this needs {-delta}", needed=-delta)
    balance: int = rows[0]["credits"]
    metrics.credit_change(delta, reason)
    await CreditLedger.insert(
        CreditLedger(
            user_id=user_id,
            delta=delta,
            balance=balance,
            reason=reason[:MAX_REASON],
            actor_id=actor_id,
            generation_id=generation_id,
        )
    )
    return balance


async def change_balance(
    engine: Engine[Any],
    user_id: UserId,
    delta: int,
    reason: str,
    *,
    actor_id: uuid.UUID | None = None,
    generation_id: uuid.UUID | None = None,
) -> int:
    """:func:`apply_change` in a transaction of its own."""
    async with write_transaction(engine):
        return await apply_change(
            user_id, delta, reason, actor_id=actor_id, generation_id=generation_id
        )


async def ledger(user_id: UserId) -> list[dict[str, Any]]:
    """The user's ledger, oldest first: ``[{delta, reason, balance, at}]``."""
    rows = (
        await CreditLedger.select(
            CreditLedger.delta, CreditLedger.reason, CreditLedger.balance, CreditLedger.at
        )
        .where(CreditLedger.user_id == user_id)
        .order_by(CreditLedger.id)
    )
    return [{**row, "at": rfc3339(row["at"])} for row in rows]
