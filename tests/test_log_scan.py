"""The suite's log scan finds our tokens and nothing else (tests/log_scan.py)."""

from __future__ import annotations

from pathlib import Path

from server.access.tokens import new_token
from tests import log_scan


def test_a_token_in_a_log_is_found_and_a_redacted_one_is_not(tmp_path: Path) -> None:
    """A raw session token is reported with its file and line; the redacted form is not."""
    token, _ = new_token("session")
    log = tmp_path / "server.log"
    log.write_text(f'{{"event": "ok"}}\n{{"path": "/x?t={token}"}}\n{{"t": "mbs_[redacted]"}}\n')
    log_scan.LOGS.append(log)
    try:
        assert log_scan.leaks() == [f"{log}:2: {token[:8]}..."]
    finally:
        log_scan.LOGS.remove(log)
