"""What to do when an edit comes back as a ``conflict`` (docs/protocol.md §3.3), sans I/O.

The caller meant "these fields should hold these values". When the entity
still exists, that intent is re-applied on top of the current version (a new
edit with ``base_version = current_version`` and the same ``data``): the
fields others changed and the caller did not touch are kept, the caller's own
fields win. When the entity is gone, or the rebases keep losing races, the
conflict goes back to the caller to decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from server.realtime import protocol as p

MAX_REBASES = 5


@dataclass(frozen=True, slots=True)
class Retry:
    """Send ``edit`` (a fresh ``op_id``, the current ``base_version``) instead."""

    edit: p.Edit


@dataclass(frozen=True, slots=True)
class Surface:
    """Give the conflict to the caller, with the reason."""

    reason: str


Decision = Retry | Surface


def decide(
    edit: p.Edit,
    conflict: p.Conflict,
    *,
    attempt: int,
    new_op_id: str,
    max_rebases: int = MAX_REBASES,
) -> Decision:
    """The rebase of ``edit`` after ``conflict``; ``attempt`` rebases were already made.

    Args:
        edit: the edit that conflicted.
        conflict: the server's answer to it.
        attempt: how many times this intent was already rebased.
        new_op_id: the op_id for the retried edit (a conflict outcome is
            remembered under the old one, so it cannot be reused).
        max_rebases: after this many, the conflict goes to the caller.
    """
    if conflict.current is None or conflict.current_version is None:
        return Surface(f"the {conflict.entity} was deleted by someone else")
    if attempt >= max_rebases:
        return Surface(f"still conflicting after {attempt} rebases")
    if edit.action == "create":
        return Surface("a create cannot be rebased")
    if edit.base_version is not None and conflict.current_version <= edit.base_version:
        return Surface("the server reports no newer version; not retrying")
    # update: the caller's fields on the current entity; delete: the caller still
    # wants it gone, whatever changed since (a stale delete is always a conflict).
    return Retry(
        msgspec.structs.replace(
            edit, op_id=new_op_id, base_version=conflict.current_version, ref=None
        )
    )
