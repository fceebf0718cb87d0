"""The checker: what a chaos run's journal and the database say about our guarantees.

Pure functions of the records (no I/O). The guarantees
(docs/architecture.md §9, docs/protocol.md §3.2 and §1), per recording
client and project:

- ``gap``, ``duplicate``: after ``joined``, events come gap-free, in order,
  exactly once; across reconnects with ``last_seq`` too (a replay continues
  the run, a snapshot restarts it);
- ``event_after_left``: nothing arrives for a project after its ``left``;
- ``not_caught_up``: once the faults stop, every client reaches the head;
- ``state_mismatch``: the client's items (snapshot + events) equal the rows;
- ``delivered_after_access_end``: no event more than ``ACCESS_GRACE_S`` after
  the member's removal was answered 204 (until it was re-added), nor after
  its session's logout was answered;
- ``write_after_access_end``: in the event log, no write by a member after
  its removal or downgrade to viewer (and before it got editor back);
- ``slow_drain``: every SIGTERMed instance exited within 10 s;
- ``late_outside_write``: an outside writer's SQL statement (one row or many)
  reaches a client joined at the time within ``PROMPT_S``, faults aside.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from load_tests.chaos.records import DatabaseState, Journal, OutsideWrite, Received

ACCESS_GRACE_S = 1.0
PROMPT_S = 1.0
DRAIN_LIMIT_S = 10.0
ITEM_FIELDS = ("kind", "room_id", "x", "y", "w", "h", "rotation", "z", "data", "version")


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str


def check(
    journal: Journal, db: DatabaseState, caught_up: dict[tuple[str, str], int | None]
) -> list[Violation]:
    """Every violation of a run. ``caught_up``: (client, project) -> its last seq at the end."""
    by_client: dict[str, list[Received]] = defaultdict(list)
    for record in journal.received:
        by_client[record.client].append(record)
    found: list[Violation] = []
    for client, records in sorted(by_client.items()):
        for pid in sorted(db.heads):
            found += check_stream(journal, client, pid, records, db, caught_up.get((client, pid)))
    found += check_access_ends(journal, db)
    found += check_writes_after_access_end(db)
    found += check_outside_writes(journal, by_client)
    found += [
        Violation(
            "slow_drain",
            f"instance {d.instance}: "
            + (
                f"exited {d.exit_s:.1f} s after SIGTERM"
                if d.exit_s is not None
                else "still running 15 s after SIGTERM"
            ),
        )
        for d in journal.drains
        if d.exit_s is None or d.exit_s > DRAIN_LIMIT_S
    ]
    return found


def check_stream(
    journal: Journal,
    client: str,
    pid: str,
    records: list[Received],
    db: DatabaseState,
    end_seq: int | None,
) -> list[Violation]:
    """Order, gaps, duplicates, the end state of one client's stream of one project."""
    found: list[Violation] = []
    where = f"{client} project {pid[:8]}"
    subscribed, expected = False, 0
    items: dict[str, dict[str, Any]] | None = None
    broken = False  # a gap or duplicate was reported: the end state is not compared
    seen_any = False
    for r in records:
        if r.kind == "closed":
            subscribed = False
            continue
        if r.project_id != pid:
            continue
        if r.kind == "joined":
            seen_any = True
            subscribed = True
            if r.mode == "snapshot":
                expected = (r.seq or 0) + 1
                items = {str(i["id"]): dict(i) for i in r.snapshot_items or []}
            else:
                expected = (r.last_seq or 0) + 1
        elif r.kind == "left":
            subscribed = False
        elif r.kind == "event":
            seq = r.seq or 0
            if not subscribed:
                found.append(
                    Violation(
                        "event_after_left",
                        f"{where}: seq {seq} on conn {r.conn} after left/close"
                        + faults_at(journal, r.t),
                    )
                )
            elif seq < expected:
                broken = True
                found.append(
                    Violation(
                        "duplicate",
                        f"{where}: seq {seq} again (expected {expected}) on conn {r.conn}"
                        + faults_at(journal, r.t),
                    )
                )
                continue
            elif seq > expected:
                broken = True
                missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                found.append(
                    Violation(
                        "gap",
                        f"{where}: got seq {seq}, never {missing} (conn {r.conn})"
                        + faults_at(journal, r.t),
                    )
                )
            expected = seq + 1
            if items is not None:
                apply(items, r)
    head = db.heads.get(pid, 0)
    if not seen_any:
        return found
    if end_seq is None or end_seq < head:
        found.append(
            Violation("not_caught_up", f"{where}: at seq {end_seq} at the end, head {head}")
        )
    elif items is not None and not broken:
        found += compare_items(where, items, db.items.get(pid, {}))
    return found


def apply(items: dict[str, dict[str, Any]], event: Received) -> None:
    """One item event onto a client's items."""
    if event.entity != "item" or event.id is None:
        return
    action = (event.event_kind or "").rsplit(".", 1)[-1]
    if action == "deleted":
        items.pop(event.id, None)
        return
    if action == "created":
        items[event.id] = dict(event.data or {})
    else:
        items.setdefault(event.id, {}).update(event.data or {})
    if event.version is not None:
        items[event.id]["version"] = event.version


def compare_items(
    where: str, mine: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]
) -> list[Violation]:
    found: list[Violation] = []
    for item_id in sorted(set(mine) | set(rows)):
        have, want = mine.get(item_id), rows.get(item_id)
        if have is None or want is None:
            found.append(
                Violation(
                    "state_mismatch",
                    f"{where}: item {item_id[:8]} only in {'db' if have is None else 'client'}",
                )
            )
            continue
        differs = [f for f in ITEM_FIELDS if not same(have.get(f), want.get(f))]
        if differs:
            shown = ", ".join(
                f"{f}: client {have.get(f)!r} db {want.get(f)!r}" for f in differs[:3]
            )
            found.append(Violation("state_mismatch", f"{where}: item {item_id[:8]} {shown}"))
    return found


def same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(str(a) == str(b)) if isinstance(a, str) or isinstance(b, str) else bool(a == b)


def check_access_ends(journal: Journal, db: DatabaseState) -> list[Violation]:
    """Events that reached a member later than the grace after its access ended.

    After a removal: events committed after it (seq above its ``member.deleted``)
    and received more than the grace after the 204, until the re-add was sent.
    After a logout: events committed after the 204 (the log's commit times)
    that reached that session's sockets past the grace; an event committed
    before the logout was the member's to see, however late a loaded machine
    delivers it (as for a removal, whose rule counts only later seqs). A client
    paused (not reading) at the time is skipped: its receive times say nothing.
    """
    found: list[Violation] = []
    removals: dict[tuple[str, str], list[int]] = defaultdict(list)  # (project, user) -> seqs
    for event in sorted(db.events, key=lambda e: e.seq):
        if event.kind == "member.deleted":
            removals[(event.project_id, event.entity_id)].append(event.seq)
    nth: dict[tuple[str, str], int] = defaultdict(int)
    for change in journal.access_changes:
        if change.how != "removed":
            continue
        key = (change.project_id, change.user_id)
        seqs, nth[key] = removals.get(key, []), nth[key] + 1
        removed_at_seq = seqs[nth[key] - 1] if nth[key] <= len(seqs) else 0
        until = change.restore_sent_at if change.restore_sent_at is not None else math.inf
        late = [
            r
            for r in journal.received
            if r.kind == "event"
            and r.user_id == change.user_id
            and r.project_id == change.project_id
            and (r.seq or 0) > removed_at_seq
            and change.answered_at + ACCESS_GRACE_S < r.t < until
            and not paused(journal, r.client, change.answered_at, r.t)
        ]
        if late:
            first = late[0]
            found.append(
                Violation(
                    "delivered_after_access_end",
                    f"{first.client} removed from {change.project_id[:8]} at seq {removed_at_seq}: "
                    f"{len(late)} later events, up to {late[-1].t - change.answered_at:.1f} s "
                    f"after the 204 (seq {first.seq}..{late[-1].seq})"
                    + faults_at(journal, change.answered_at),
                )
            )
    committed_at = {(e.project_id, e.seq): e.at for e in db.events}
    for end in journal.session_ends:
        late = [
            r
            for r in journal.received
            if r.kind == "event"
            and r.client == end.client
            and r.session == end.session
            and r.t > end.answered_at + ACCESS_GRACE_S
            and committed_at.get((r.project_id or "", r.seq or 0), math.inf) > end.answered_wall
            and not paused(journal, r.client, end.answered_at, r.t)
        ]
        if late:
            found.append(
                Violation(
                    "delivered_after_access_end",
                    f"{end.client} logged out (session {end.session}): {len(late)} events, up to "
                    f"{late[-1].t - end.answered_at:.1f} s after the 204 (conn {late[-1].conn})"
                    + faults_at(journal, end.answered_at),
                )
            )
    return found


def faults_at(journal: Journal, t: float) -> str:
    """`` (during X, Y)`` for the faults under way at ``t`` (or a second before), else ``""``."""
    kinds = sorted({f.kind for f in journal.faults if f.start - 1.0 <= t <= f.end + 1.0})
    return f" (during {', '.join(kinds)})" if kinds else ""


def paused(journal: Journal, client: str, start: float, end: float) -> bool:
    """Whether ``client`` stopped reading at some time between ``start`` and ``end``."""
    return any(p.client == client and p.start < end and p.end + 0.5 > start for p in journal.pauses)


def check_writes_after_access_end(db: DatabaseState) -> list[Violation]:
    """From the log: a write by a member after its removal/downgrade, before it got editor back."""
    found: list[Violation] = []
    lost: dict[tuple[str, str], tuple[int, str]] = {}  # (project, user) -> (seq, kind of the loss)
    for event in sorted(db.events, key=lambda e: (e.project_id, e.seq)):
        key = (event.project_id, event.entity_id)
        if event.entity == "member":
            role = event.data.get("role")
            if event.kind == "member.deleted":
                lost[key] = (event.seq, "removed")
            elif role == "viewer":
                lost[key] = (event.seq, "made viewer")
            else:
                lost.pop(key, None)
            continue
        if event.actor_id is None:
            continue
        loss = lost.get((event.project_id, event.actor_id))
        if loss is not None:
            found.append(
                Violation(
                    "write_after_access_end",
                    f"project {event.project_id[:8]}: user {event.actor_id[:8]} {loss[1]} at seq "
                    f"{loss[0]}, then its {event.kind} committed at seq {event.seq}",
                )
            )
    return found


def check_outside_writes(journal: Journal, by_client: dict[str, list[Received]]) -> list[Violation]:
    """Outside writes that reached a client joined when they committed later than PROMPT_S.

    Writes made while a fault was under way, and clients paused then, are skipped.
    """
    found: list[Violation] = []
    for write in journal.outside_writes:
        if faults_at(journal, write.committed_at):
            continue
        for client, records in by_client.items():
            late = late_receipts(records, write, PROMPT_S)
            if late and not paused(journal, client, write.committed_at, late[-1].t):
                rows = write.last_seq - write.first_seq + 1
                found.append(
                    Violation(
                        "late_outside_write",
                        f"{client} project {write.project_id[:8]}: a {rows}-row statement "
                        f"(seq {write.first_seq}..{write.last_seq}): {len(late)} of its events "
                        f"came {late[0].t - write.committed_at:.1f}-"
                        f"{late[-1].t - write.committed_at:.1f} s after the commit",
                    )
                )
    return found


def late_receipts(records: list[Received], write: OutsideWrite, limit_s: float) -> list[Received]:
    """The write's events this client got over ``limit_s`` after the commit, on a subscription
    that was already there when it committed (a later join's replay is not late)."""
    subscribed_since: float | None = None
    late: list[Received] = []
    for r in records:
        if r.kind == "closed" or (r.kind == "left" and r.project_id == write.project_id):
            subscribed_since = None
        elif r.kind == "joined" and r.project_id == write.project_id:
            subscribed_since = r.t
        elif (
            r.kind == "event"
            and r.project_id == write.project_id
            and write.first_seq <= (r.seq or 0) <= write.last_seq
            and subscribed_since is not None
            and subscribed_since < write.committed_at
            and r.t - write.committed_at > limit_s
        ):
            late.append(r)
    return late
