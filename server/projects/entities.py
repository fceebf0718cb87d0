"""The wire form of entities (docs/protocol.md §2.9): what REST, events and snapshots carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.timestamps import rfc3339

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
