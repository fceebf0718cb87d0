"""Times as the wire writes them: aware UTC datetimes, RFC 3339 strings with a Z.

REST bodies, events, snapshots and exports all carry times this one way
(docs/protocol.md §2), whatever the database handed back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (SQLite gives naive ones, written as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as every time on the wire."""
    aware = utc(value)
    return None if aware is None else aware.isoformat().replace("+00:00", "Z")
