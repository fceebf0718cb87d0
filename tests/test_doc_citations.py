"""Doc citations (scripts/cite_docs.py): the check finds bad ones, the rewrite maps old ones."""

from __future__ import annotations

import pytest

from scripts import cite_docs

P, D = "docs/protocol.md", "docs/architecture.md"


def problems(rel: str, text: str) -> list[str]:
    return [p.message for p in cite_docs.Checker().check(rel, text)]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("(PROTOCOL.md 3.3)", f"({P} §3.3)"),
        ("PROTOCOL.md section 2 (members, invitations", f"{P} §2.4 (members, invitations"),
        ("of PROTOCOL.md\nsection 3)", f"of {P}\n§3)"),
        ("close codes of PROTOCOL.md 3.5", f"close codes of {P} §5"),
        ("PROTOCOL.md's item entity", f"the item entity of {P} §2.9"),
        ("(PROTOCOL.md preamble)", f"({P} §0)"),
        ('(DESIGN.md "Access and sessions")', f"({D} §5)"),
        ("DESIGN.md guarantee 4", f"{D} §9.4"),
        ('(wire.py; DESIGN.md\n"delivery path")', f"(wire.py; {D}\n§3)"),
        ("(DESIGN.md, write\npath)", f"({D} §2, the write\npath)"),
        ('(STACK-NOTES.md, "Tokens leak into logs")', '(docs/security.md "Tokens")'),
    ],
)
def test_old_citations_are_rewritten_to_sections_that_exist(old: str, new: str) -> None:
    """Each old form becomes its docs/ section, and the result passes the check."""
    assert cite_docs.rewrite(old) == new
    assert problems("server/example.py", new) == []


def test_citations_of_documents_outside_the_repository_are_refused() -> None:
    """The shared documents may be named only by the pages that say where they come from."""
    assert problems("server/x.py", "see PROTOCOL.md 3.2") == [
        "cites PROTOCOL.md, which is not in this repository"
    ]
    assert problems("tests/x.py", "(STYLE.md)") == [
        "cites STYLE.md, which is not in this repository"
    ]
    assert problems("docs/protocol.md", "built to `shared/PROTOCOL.md`") == []
    assert problems("docs/operations.md", "`shared/DESIGN.md`") == [
        "cites shared/DESIGN.md, which is not in this repository"
    ]


def test_missing_documents_sections_headings_and_tests_are_refused() -> None:
    """A doc, a § number, a quoted heading, a file or a test that does not exist is named."""
    assert problems("server/x.py", "docs/nowhere.md") == [
        "cites docs/nowhere.md, which does not exist"
    ]
    assert problems("server/x.py", f"{P} §3.9") == [f"{P} has no section §3.9"]
    assert problems("server/x.py", f"{P} §3.2, §12") == [f"{P} has no section §12"]
    assert problems("server/x.py", 'docs/operations.md "No such heading"') == [
        'docs/operations.md has no heading "No such heading"'
    ]
    assert problems("server/x.py", "tests/test_merge.py::test_nothing") == [
        "names tests/test_merge.py::test_nothing, which does not exist"
    ]
    assert problems("server/x.py", "server/nowhere.py") == [
        "names server/nowhere.py, which does not exist"
    ]


def test_a_bare_section_is_the_documents_own_and_ambiguous_elsewhere() -> None:
    """In docs/X.md "§3.2" is X's own section; in code it must name its document."""
    assert problems(P, "as §3.2 says") == []
    assert problems(P, "as §42 says") == [f"{P} has no section §42 of its own"]
    assert problems("server/x.py", "as §3.2 says") == ["§3.2 does not say which document"]
    assert problems("server/x.py", f"`{P}` §3.2 and {D} §9.4") == []


def test_the_repository_cites_only_what_exists() -> None:
    """No file cites a document outside the repository or a section, file or test that is gone."""
    found = [str(problem) for problem in cite_docs.check()]
    assert not found, (
        "run: python3 scripts/cite_docs.py --apply (then fix the rest):\n" + "\n".join(found)
    )
