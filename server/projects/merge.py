"""The field-level merge rule of docs/protocol.md §3.3, as a pure function.

A write names the version it was based on. If that is the current version it
applies. If it is older, it still applies when none of the fields it sets was
changed by a version after its base ("merged"); otherwise it is a conflict
listing exactly the overlapping fields. Deletes with a stale base always
conflict, and so does anything aimed at an entity that no longer exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Action = Literal["update", "delete"]


@dataclass(frozen=True, slots=True)
class Apply:
    """The write commits; ``merged`` when its base was stale but nothing overlapped."""

    merged: bool


@dataclass(frozen=True, slots=True)
class Reject:
    """The write conflicts: nothing is written; ``fields`` are the overlapping ones."""

    fields: tuple[str, ...]


Decision = Apply | Reject


def decide(
    *,
    action: Action,
    fields: Iterable[str],
    base_version: int,
    current_version: int | None,
    changed_since_base: Iterable[str],
    versions_known: int,
) -> Decision:
    """Decide a versioned write.

    Args:
        action: ``update`` or ``delete``.
        fields: the fields the write sets (``data``'s keys); empty for delete.
        base_version: the version the client based the write on.
        current_version: the entity's version now, or None when it was deleted.
        changed_since_base: every field changed by versions after ``base_version``.
        versions_known: how many of those versions the log still holds; fewer
            than ``current_version - base_version`` means history is missing and
            every field must be assumed changed.
    """
    requested = tuple(sorted(set(fields)))
    if current_version is None:
        return Reject(fields=requested)
    if base_version == current_version:
        return Apply(merged=False)
    if base_version > current_version or action == "delete":
        return Reject(fields=requested)
    if versions_known < current_version - base_version:
        return Reject(fields=requested)
    overlap = tuple(sorted(set(requested) & set(changed_since_base)))
    if overlap:
        return Reject(fields=overlap)
    return Apply(merged=True)
