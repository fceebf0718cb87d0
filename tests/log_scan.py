"""The suite's own log scan: no token of ours in any line a server or worker process printed.

Every process that tests/servers.py starts writes its output to a file and
registers it here; at the end of the session each is searched for anything
shaped like one of our tokens (``mbs_``, ``mbk_``, ``mbi_`` followed by its
random part: server/access/tokens.py). A redacted one (``mbs_[redacted]``)
does not match. Any match fails the run (docs/security.md "Tokens").
"""

from __future__ import annotations

import re
from pathlib import Path

TOKEN = re.compile(r"(?<![A-Za-z0-9])mb[ski]_[A-Za-z0-9_-]{16,}")
LOGS: list[Path] = []


def leaks() -> list[str]:
    """``file:line: token prefix`` for every token found in a registered log."""
    found = []
    for path in LOGS:
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            for match in TOKEN.finditer(line):
                found.append(f"{path}:{number}: {match.group()[:8]}...")
    return found
