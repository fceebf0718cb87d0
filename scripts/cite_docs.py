#!/usr/bin/env python3
"""Citations of documents in the code and the docs: check them, and rewrite the old ones.

    python3 scripts/cite_docs.py            # check; exit 1 listing every bad citation
    python3 scripts/cite_docs.py --apply    # rewrite the old citations first, then check

The code cites the project's own documents by file and section, the way
websockets cites RFC 6455: "docs/protocol.md §3.2", "docs/architecture.md
§9.4", or a heading by name, 'docs/operations.md "Maintenance"'. The check
(run by ``tests/test_doc_citations.py``) fails when a file

- cites a document that is not in this repository (the shared contract
  ``PROTOCOL.md``, ``DESIGN.md``, ``STACK-NOTES.md``, ``STYLE.md``: only
  docs/protocol.md and docs/architecture.md name ``shared/...`` as their
  origin);
- names a ``docs/`` file, or a file under ``server/``, ``tests/``,
  ``scripts/`` or ``load_tests/``, that does not exist;
- cites a section number (``§N``) or a quoted heading the document does not
  have (in a document, a bare ``§N`` is one of its own sections);
- names a test (``tests/path.py::test_name``) that does not exist.

``--apply`` rewrites the citations of the shared documents that the code
carried before docs/protocol.md and docs/architecture.md existed, by
:data:`REWRITES` (the shared contract's sections 1 to 3 keep their numbers in
docs/protocol.md). It can run again after other branches are merged; what
it cannot rewrite, the check then lists. Rewritten lines may grow past the
line length: it lists those too (rewrap them by hand; ruff says so as well).
Migrations are history and are not scanned.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("server", "tests", "load_tests", "scripts", "docs", ".ci")
SCANNED_FILES = ("README.md", "dev.py")
SUFFIXES = frozenset({".py", ".md", ".js", ".html", ".css", ".sql", ".lua", ".yml", ".sh", ""})
# This script and its test hold old and broken citations on purpose.
EXEMPT = frozenset({Path(__file__).resolve(), ROOT / "tests" / "test_doc_citations.py"})
# The pages that say where they come from: they may name the shared documents.
ORIGIN_PAGES = frozenset({"docs/protocol.md", "docs/architecture.md"})
LINE_LENGTH = 100

P = "docs/protocol.md"
D = "docs/architecture.md"

# (pattern, replacement), applied in this order: the specific forms first, then the
# section numbers (the shared contract's 1, 2, 3.1-3.5 are docs/protocol.md's), then
# the bare names.
REWRITES: list[tuple[str, str]] = [
    # --- PROTOCOL.md: phrases that name a part of a section --------------------------------
    (r"PROTOCOL\.md's (project|room|item|generation) entity", rf"the \1 entity of {P} §2.9"),
    (r"PROTOCOL\.md's user\b", rf"The user of {P} §2.9"),
    (r"PROTOCOL\.md's eight types", rf"the eight types of {P} §2.9"),
    (r"the five of PROTOCOL\.md", rf"the five of {P} §2.9"),
    (r"carry PROTOCOL\.md's fields only", rf"carry the fields of {P} §2.9 only"),
    (
        r"PROTOCOL\.md's default per-socket message rate",
        rf"the default per-socket message rate of {P} §3.5",
    ),
    (r"PROTOCOL\.md's own examples", rf"The examples of {P} §3"),
    (r", inside PROTOCOL\.md's 30\)", rf", {P} §3.4)"),
    (r"PROTOCOL\.md preamble", rf"{P} §0"),
    (r"PROTOCOL\.md: never silently stored", rf"{P} §0: never silently stored"),
    (r"PROTOCOL\.md wants wrong types refused", rf"{P} §0 wants wrong types refused"),
    (r"PROTOCOL\.md shows them", rf"{P} §3.6 shows them"),
    (r"PROTOCOL\.md section 2 \(\"Credits\"\)", rf"{P} §2.9"),
    (r"PROTOCOL\.md 3\.1-3\.5", rf"{P} §3"),
    (r"PROTOCOL\.md 2, RFC 9457", rf"{P} §2.1, RFC 9457"),
    (r"one of PROTOCOL\.md 3\.5", rf"one of {P} §4"),
    (r"``code`` \(PROTOCOL\.md 3\.5\)", rf"``code`` ({P} §4)"),
    (r"``code`` member \(PROTOCOL\.md 3\.5\)", rf"``code`` member ({P} §4)"),
    (r"close codes of PROTOCOL\.md 3\.5", rf"close codes of {P} §5"),
    (r"4401  # PROTOCOL\.md 3\.5", rf"4401  # {P} §5"),
    (r"\(not in PROTOCOL\.md, additive\)", "(beyond the shared contract, additive)"),
    # phrases that name a subsection of section 2
    (
        r"errors the server really sends \(PROTOCOL\.md 2\)",
        rf"errors the server really sends ({P} §2.1)",
    ),
    (r"for every error \(PROTOCOL\.md section 2\)", rf"for every error ({P} §2.1)"),
    (r"RFC 9457 problem \(PROTOCOL\.md 2\)", rf"RFC 9457 problem ({P} §2.1)"),
    (r"Authentication \(PROTOCOL\.md section 2\)", rf"Authentication ({P} §2.1)"),
    (r"``forbidden``, PROTOCOL\.md section 2\)", rf"``forbidden``, {P} §2.1)"),
    (r"same-origin ``Origin``, PROTOCOL\.md 2\)", rf"same-origin ``Origin``, {P} §2.1)"),
    (r"fields \(PROTOCOL\.md 2: they are rejected", rf"fields ({P} §0: they are rejected"),
    (r"PROTOCOL\.md section 2: \"A body that fails", rf"{P} §2.1: \"A body that fails"),
    (
        r"# PROTOCOL\.md 2: a project the caller cannot read",
        rf"# {P} §2.1: a project the caller cannot read",
    ),
    (r"\(PROTOCOL\.md 2: liveness, readiness", rf"({P} §2.8: liveness, readiness"),
    (r"Sessions \(PROTOCOL\.md 2\)", rf"Sessions ({P} §2.3)"),
    (r"PROTOCOL\.md section 2: ``GET /api/me/export``", rf"{P} §2.3: ``GET /api/me/export``"),
    (r"PROTOCOL\.md section 2 \(members, invitations", rf"{P} §2.4 (members, invitations"),
    (r"\(owners manage; PROTOCOL\.md section 2\)", rf"(owners manage; {P} §2.4)"),
    (r"Only owners manage them \(PROTOCOL\.md section 2\)", rf"Only owners manage them ({P} §2.4)"),
    (r"the last one cannot leave, PROTOCOL\.md 2\)", rf"the last one cannot leave, {P} §2.4)"),
    (r"event log over REST \(PROTOCOL\.md section 2\)", rf"event log over REST ({P} §2.5)"),
    (r"read, cancel \(PROTOCOL\.md 2\)", rf"read, cancel ({P} §2.6)"),
    (r"The worker API (over HTTP )?\(PROTOCOL\.md 2\)", rf"The worker API \1({P} §2.6)"),
    (r"## The worker API \(PROTOCOL\.md 2\)", rf"## The worker API ({P} §2.6)"),
    (r"paid in credits(\s+)\(PROTOCOL\.md 2\)", rf"paid in credits\1({P} §2.6)"),
    (r"\(PROTOCOL\.md section 2: /healthz, /readyz\)", rf"({P} §2.8: /healthz, /readyz)"),
    (
        r"The wire form of entities \(PROTOCOL\.md section 2\)",
        rf"The wire form of entities ({P} §2.9)",
    ),
    (r"entity field names of PROTOCOL\.md section 2", rf"entity field names of {P} §2.9"),
    (r"field names of PROTOCOL\.md,", rf"field names of {P} §2.9,"),
    (r"and projects \(PROTOCOL\.md section 2\)", rf"and projects ({P} §2.9, §3.3)"),
    (r"of the REST API \(PROTOCOL\.md section 2\)", rf"of the REST API ({P} §2.10)"),
    (r"outside writers may,(\s+)PROTOCOL\.md 2\)", rf"outside writers may,\1{P} §7)"),
    (r"the wire contract \(PROTOCOL\.md\)", f"the wire contract ({P})"),
    # --- PROTOCOL.md N / section N: the same number in docs/protocol.md ---------------------
    (r"PROTOCOL\.md(\s+)(?:section\s+)?(\d+(?:\.\d+)?)\b", rf"{P}\1§\2"),
    (r"PROTOCOL\.md", P),
    # --- DESIGN.md ---------------------------------------------------------------------------
    (r"DESIGN\.md guarantee (\d)", rf"{D} §9.\1"),
    (r"DESIGN\.md \"Access and sessions\"", f"{D} §5"),
    (r"DESIGN\.md \"scaling\"", f"{D} §8"),
    (r"DESIGN\.md(\s+)\"?delivery path\"?", rf"{D}\1§3"),
    (r"DESIGN\.md \"Presence\"", f"{D} §4"),
    (r"DESIGN\.md \"Generations\"", f"{D} §6"),
    (r"\(DESIGN\.md: fan-out bus, control\)", f"({D} §3.5)"),
    (r"write path of DESIGN\.md", f"write path of {D} §2"),
    (r"DESIGN\.md's write path", f"the write path of {D} §2"),
    (r"DESIGN\.md,(\s+)write(\s+)path", rf"{D} §2,\1the write\2path"),
    (r"DESIGN\.md write path", f"{D} §2"),
    (r"The promises of DESIGN\.md", f"The guarantees of {D} §9"),
    (r"the write path bumps it \(DESIGN\.md\)", f"the write path bumps it ({D} §2)"),
    (r"durable \(DESIGN\.md\)", f"durable ({D} §1)"),
    (r"own read \(DESIGN\.md\)", f"own read ({D} §3.2)"),
    (r"is in `DESIGN\.md` \(repository `shared/`\)", f"is in `{D}`"),
    (r"DESIGN\.md", D),
    # --- STACK-NOTES.md and STYLE.md: notes for whoever writes the code ----------------------
    (r"\(STACK-NOTES\.md, \"Tokens leak into logs\"\)", '(docs/security.md "Tokens")'),
    (r"defence, STACK-NOTES\.md\)", 'defence, docs/security.md "Origin")'),
    (r"# STACK-NOTES\.md, \"Browser tests\": what", "# What"),
    (r" \(STACK-NOTES\.md, Locust\)", ""),
    (r"Debian's Chromium \(STACK-NOTES\.md\)", 'Debian\'s Chromium (README.md "Test")'),
    (r"\(STYLE\.md,(\s+)encode/broadcaster\)", r"(as\1encode/broadcaster does)"),
    (r" \(STYLE\.md: one exception root\)", " (one root for all of them)"),
]

_OUTSIDE = re.compile(r"(?<![\w-])(shared/)?(PROTOCOL|DESIGN|STACK-NOTES|STYLE)\.md\b")
_SECTION = r"§\d+(?:\.\d+)*"
_CITATION = re.compile(
    r"(?<![\w./-])(?P<doc>docs/[\w-]+\.md|README\.md)`?"
    rf"(?P<tail>,?[ \t]*(?:\n[ \t]*)?(?:{_SECTION}(?:\s*(?:,|and|or|to|-)\s*{_SECTION})*"
    r"|\"[^\"\n]{1,80}\"))?"
)
_SECTIONS_IN = re.compile(_SECTION)
_BARE_SECTION = re.compile(rf"(?<![\w§]){_SECTION}")
_PATH = re.compile(
    r"(?<![\w./-])((?:docs|server|tests|scripts|load_tests)/[\w/.-]+?"
    r"\.(?:py|md|js|yml|lua|sql|sh|html|css))(?:::(\w+))?(?![\w/])"
)
_HEADING = re.compile(r"^#{1,6}\s+(?:(\d+(?:\.\d+)*)\.?\s+)?(.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def scanned_files() -> list[Path]:
    """Every text file whose citations are checked (migrations are history: not scanned)."""
    found = [ROOT / name for name in SCANNED_FILES if (ROOT / name).exists()]
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if (
                path.is_file()
                and path.suffix in SUFFIXES
                and "__pycache__" not in path.parts
                and path.resolve() not in EXEMPT
            ):
                found.append(path)
    return found


def _headings(doc: Path) -> tuple[set[str], list[str]]:
    """A document's section numbers and its headings' texts (lower case)."""
    numbers, names = set(), []
    for match in _HEADING.finditer(doc.read_text()):
        if match.group(1):
            numbers.add(match.group(1))
        names.append(f"{match.group(1) or ''} {match.group(2)}".strip().lower())
    return numbers, names


class Checker:
    def __init__(self) -> None:
        self._docs: dict[str, tuple[set[str], list[str]]] = {}

    def sections(self, doc: str) -> tuple[set[str], list[str]] | None:
        if doc not in self._docs:
            path = ROOT / doc
            if not path.is_file():
                return None
            self._docs[doc] = _headings(path)
        return self._docs[doc]

    def check(self, rel: str, text: str) -> list[Problem]:
        """The bad citations in ``text``, the content of the file ``rel`` (from the root)."""
        problems: list[Problem] = []

        def report(position: int, message: str) -> None:
            problems.append(Problem(rel, text.count("\n", 0, position) + 1, message))

        for match in _OUTSIDE.finditer(text):
            if match.group(1) and rel in ORIGIN_PAGES:
                continue
            report(match.start(), f"cites {match.group(0)}, which is not in this repository")
        consumed: set[int] = set()
        for match in _CITATION.finditer(text):
            doc, tail = match.group("doc"), match.group("tail") or ""
            known = self.sections(doc)
            if known is None:
                report(match.start(), f"cites {doc}, which does not exist")
                continue
            numbers, names = known
            for section in _SECTIONS_IN.finditer(tail):
                consumed.add(match.start("tail") + section.start())
                if section.group(0)[1:] not in numbers:
                    report(match.start(), f"{doc} has no section {section.group(0)}")
            quoted = re.search(r"\"([^\"]+)\"", tail)
            if quoted and not any(quoted.group(1).lower() in name for name in names):
                report(match.start(), f'{doc} has no heading "{quoted.group(1)}"')
        for match in _BARE_SECTION.finditer(text):
            if match.start() in consumed:
                continue
            if rel.startswith("docs/") and rel.endswith(".md"):
                numbers, _ = self.sections(rel) or (set(), [])
                if match.group(0)[1:] not in numbers:
                    report(match.start(), f"{rel} has no section {match.group(0)} of its own")
            else:
                report(match.start(), f"{match.group(0)} does not say which document")
        for match in _PATH.finditer(text):
            target, test = match.group(1), match.group(2)
            if target.startswith("docs/") and target.endswith(".md"):
                continue  # a citation: checked above
            file = ROOT / target
            if not file.is_file():
                report(match.start(), f"names {target}, which does not exist")
            elif test and not re.search(rf"^(?:async )?def {test}\(", file.read_text(), re.M):
                report(match.start(), f"names {target}::{test}, which does not exist")
        return problems


def check(files: list[Path] | None = None) -> list[Problem]:
    """Every bad citation in ``files`` (default: every scanned file)."""
    checker = Checker()
    return [
        problem
        for path in files or scanned_files()
        for problem in checker.check(path.relative_to(ROOT).as_posix(), path.read_text())
    ]


def rewrite(text: str) -> str:
    """``text`` with the old citations of the shared documents rewritten (REWRITES)."""
    for pattern, replacement in REWRITES:
        text = re.sub(pattern, replacement, text)
    return text


def apply(files: list[Path] | None = None) -> list[Problem]:
    """Rewrite the old citations in place; the lines that grew past the line length."""
    long_lines: list[Problem] = []
    for path in files or scanned_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ORIGIN_PAGES:
            continue
        text = path.read_text()
        new = rewrite(text)
        if new == text:
            continue
        path.write_text(new)
        before = set(text.splitlines())
        for number, line in enumerate(new.splitlines(), 1):
            if len(line) > LINE_LENGTH and line not in before and path.suffix != ".md":
                long_lines.append(Problem(rel, number, f"now {len(line)} characters long"))
    return long_lines


def main(argv: list[str]) -> int:
    if "--apply" in argv:
        for problem in apply():
            print(f"{problem} (rewrap it)")
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
