"""The credit ledger: one row for every change of a balance."""

from __future__ import annotations

from piccolo.columns import UUID, BigSerial, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.access.tables import AppUser


class CreditLedger(Table, tablename="credit_ledger"):
    """A change of a user's credit balance, with the balance after it and why."""

    id = BigSerial(primary_key=True)
    user_id = ForeignKey(AppUser, on_delete=OnDelete.cascade, null=False)
    delta = Integer()
    balance = Integer(help_text="The balance after this change.")
    reason = Varchar(
        length=256, help_text="signup, generation.reserve, generation.refund, admin: <reason>."
    )
    generation_id = UUID(null=True, default=None)
    actor_id = UUID(null=True, default=None, help_text="Admin who adjusted it, if any.")
    at = Timestamptz(default=TimestamptzNow())
