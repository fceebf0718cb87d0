"""Field rules of rooms, items and projects (docs/protocol.md §2.9, §3.3), as pure functions.

Each check returns the cleaned fields or raises ValidationFailed whose
message starts with the offending field's name, so a socket ``error`` or a
REST problem says exactly what to fix. Unknown fields are refused, never
stored.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Literal

import msgspec

from server.errors import BadRequest, ValidationFailed
from server.types import ITEM_KINDS, ROOM_TYPES

MAX_JSON_BYTES = 16 * 1024
# Nesting of attributes/data: ample for any design note, and far below the depth
# at which a JSON codec runs out of stack (msgspec fails near 1000, in any caller).
MAX_JSON_DEPTH = 32
MAX_NAME = 200
MAX_DESCRIPTION = 10_000
EditableEntity = Literal["project", "room", "item"]

ROOM_DEFAULTS: dict[str, Any] = {"room_type": "other", "attributes": {}, "position": 0.0}
ITEM_DEFAULTS: dict[str, Any] = {
    "x": 0.0,
    "y": 0.0,
    "w": 200.0,
    "h": 200.0,
    "rotation": 0.0,
    "z": 0.0,
    "data": {},
}
EDITABLE: dict[EditableEntity, frozenset[str]] = {
    "project": frozenset({"name", "description"}),
    "room": frozenset({"name", "room_type", "attributes", "position"}),
    "item": frozenset({"room_id", "kind", "x", "y", "w", "h", "rotation", "z", "data"}),
}
REQUIRED_ON_CREATE: dict[EditableEntity, frozenset[str]] = {
    "project": frozenset(),
    "room": frozenset({"name"}),
    "item": frozenset({"kind"}),
}


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", field=field)


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, "must be a number")
    try:
        number = float(value)  # an integer past a float's range raises, it is never inf
    except OverflowError:
        raise _fail(field, "must be a finite number within ±1.8e308") from None
    if not math.isfinite(number):
        raise _fail(field, "must be a finite number")
    return number


def _shape(value: Any) -> tuple[int, bool]:
    """How deeply ``value`` nests, and whether a string in it (keys too) holds U+0000."""
    depth, nul = 0, False
    pending = [(value, 0)]
    while pending:  # a loop, not recursion: the client chooses the nesting
        item, level = pending.pop()
        if isinstance(item, str):
            nul = nul or "\x00" in item
        elif isinstance(item, dict | list):
            depth = max(depth, level + 1)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return depth, nul


def clean_text(field: str, value: Any, limit: int) -> str:
    """A non-empty stripped string of at most ``limit`` characters, without U+0000."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(field, f"must be a non-empty string of at most {limit} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold it (SQLite can): same answer on both
        raise _fail(field, "must not contain U+0000")
    return value.strip()


def clean_json(field: str, value: Any) -> dict[str, Any]:
    """A JSON object within the size and nesting limits, without U+0000."""
    if not isinstance(value, dict):
        raise _fail(field, "must be a JSON object")
    depth, nul = _shape(value)
    if depth > MAX_JSON_DEPTH:  # checked first: encoding it could exhaust the stack
        raise _fail(field, f"nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    size = len(msgspec.json.encode(value))
    if size > MAX_JSON_BYTES:
        raise _fail(field, f"is {size} bytes; the limit is {MAX_JSON_BYTES}")
    if nul:  # PostgreSQL jsonb cannot hold it (SQLite can): same answer on both
        raise _fail(field, "must not contain U+0000 in any key or string")
    return value


def _check(entity: EditableEntity, field: str, value: Any) -> Any:
    if field == "name":
        return clean_text(field, value, MAX_NAME)
    if field == "description":
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            raise _fail(field, f"must be a string of at most {MAX_DESCRIPTION} characters")
        if "\x00" in value:
            raise _fail(field, "must not contain U+0000")
        return value
    if field == "room_type":
        if value not in ROOM_TYPES:
            raise _fail(field, f"must be one of {', '.join(ROOM_TYPES)}")
        return value
    if field == "kind":
        if value not in ITEM_KINDS:
            raise _fail(field, f"must be one of {', '.join(ITEM_KINDS)}")
        return value
    if field in ("attributes", "data"):
        return clean_json(field, value)
    if field == "room_id":
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise _fail(field, "must be a UUID") from None
    number = _number(field, value)
    if field in ("w", "h") and number <= 0:
        raise _fail(field, "must be greater than 0")
    return number


def clean(entity: EditableEntity, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check ``data`` for ``entity``; the cleaned fields (defaults added when creating).

    Raises:
        BadRequest: an unknown field (400, like any unknown field).
        ValidationFailed: a missing required field or a bad value, naming it (422).
    """
    if not isinstance(data, dict):
        raise BadRequest("data: must be a JSON object", field="data")
    allowed = EDITABLE[entity]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadRequest(
            f"{unknown[0]}: not a field of {entity} you can set "
            f"(allowed: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
    cleaned = {field: _check(entity, field, value) for field, value in data.items()}
    if creating:
        missing = sorted(REQUIRED_ON_CREATE[entity] - set(cleaned))
        if missing:
            raise _fail(missing[0], "is required")
        defaults = ROOM_DEFAULTS if entity == "room" else ITEM_DEFAULTS if entity == "item" else {}
        cleaned = {**defaults, **cleaned}
    elif not cleaned:
        raise ValidationFailed("data: no field to change")
    return cleaned
