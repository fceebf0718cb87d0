"""The chaos run's summary: what ran, which faults, which violations (a few examples each)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from load_tests.chaos.checker import Violation
from load_tests.chaos.records import DatabaseState, Journal

EXAMPLES = 3


def summarize(
    journal: Journal, db: DatabaseState, violations: list[Violation], run: dict[str, Any]
) -> dict[str, Any]:
    """The numbers of a run, as one JSON-able dict (the last line of the output)."""
    by_kind = Counter(v.kind for v in violations)
    return {
        **run,
        "events": sum(db.heads.values()),
        "event_frames_received": sum(1 for r in journal.received if r.kind == "event"),
        "clients": len({r.client for r in journal.received}),
        "reconnects": sum(1 for r in journal.received if r.kind == "closed"),
        "joins": Counter(str(r.mode) for r in journal.received if r.kind == "joined"),
        "edits": dict(sorted(journal.edits.items())),
        "outside_statements": journal.outside_statements,
        "access_changes": Counter(c.how for c in journal.access_changes),
        "logouts": len(journal.session_ends),
        "faults": Counter(f.kind for f in journal.faults),
        "drain_seconds": [None if d.exit_s is None else round(d.exit_s, 1) for d in journal.drains],
        "violations": dict(sorted(by_kind.items())),
        "violation_count": len(violations),
    }


def render(summary: dict[str, Any], journal: Journal, violations: list[Violation]) -> str:
    """The human summary, then ``SUMMARY {json}`` on one line."""
    lines = [
        f"chaos run: seed {summary['seed']}, {summary['minutes']} min, "
        f"{summary['instances']} instances, logs in {summary['logs']}",
        f"events in the log: {summary['events']} ({summary['event_frames_received']} event frames "
        f"received by {summary['clients']} recording clients, "
        f"{summary['reconnects']} socket closes)",
        f"joins: {dict(summary['joins'])}",
        f"edits: {summary['edits']}; outside SQL statements: {summary['outside_statements']}",
        f"access changes: {dict(summary['access_changes'])}; logouts: {summary['logouts']}",
        f"faults: {dict(summary['faults'])}",
    ]
    lines += [f"  {f.kind}: {f.detail}" for f in journal.faults]
    if not violations:
        lines.append("violations: none")
    else:
        lines.append(f"violations: {summary['violation_count']}")
        for kind, count in summary["violations"].items():
            lines.append(f"  {kind}: {count}")
            lines += [f"    - {v.detail}" for v in violations if v.kind == kind][:EXAMPLES]
    lines.append("SUMMARY " + json.dumps(summary, sort_keys=True))
    return "\n".join(lines)
