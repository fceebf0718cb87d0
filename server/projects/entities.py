"""The wire form of entities (docs/protocol.md §2.9): what REST, events and snapshots carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

PROJECT_FIELDS = (
    "id",
    "name",
    "description",
    "owner_id",
    "team_id",
    "version",
    "seq",
    "created_at",
    "updated_at",
)


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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if hasattr(value, "hex") and type(value).__name__ == "UUID":
        return str(value)
    return value


def plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Field values as JSON-ready values (UUIDs and times as strings)."""
    return {name: _plain(value) for name, value in fields.items()}


def project_entity(row: dict[str, Any]) -> dict[str, Any]:
    """A project row as the project entity of docs/protocol.md §2.9 (JSON-ready)."""
    return {name: _plain(row[name]) for name in PROJECT_FIELDS}


ROOM_FIELDS = ("id", "project_id", "name", "room_type", "attributes", "position", "version")
ITEM_FIELDS = (
    "id",
    "project_id",
    "room_id",
    "kind",
    "x",
    "y",
    "w",
    "h",
    "rotation",
    "z",
    "data",
    "version",
)
GENERATION_FIELDS = (
    "id",
    "project_id",
    "room_id",
    "requested_by",
    "prompt",
    "params",
    "status",
    "progress",
    "stage",
    "cost",
    "result",
    "error",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "version",
    "queue_wait_ms",
    "run_ms",
    "stage_timings",
)


def room_entity(row: dict[str, Any]) -> dict[str, Any]:
    """A room row as the room entity of docs/protocol.md §2.9 (JSON columns already loaded)."""
    return {name: _plain(row[name]) for name in ROOM_FIELDS}


def item_entity(row: dict[str, Any]) -> dict[str, Any]:
    """An item row as the item entity of docs/protocol.md §2.9 (JSON columns already loaded)."""
    return {name: _plain(row[name]) for name in ITEM_FIELDS}


def generation_entity(row: dict[str, Any]) -> dict[str, Any]:
    """A generation row as the generation entity of docs/protocol.md §2.9 (JSON loaded)."""
    return {name: _plain(row[name]) for name in GENERATION_FIELDS}
