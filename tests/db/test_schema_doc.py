"""docs/schema.md is in step with the tables and constraints it documents."""

from __future__ import annotations

from server.db.schema_doc import DOC, updated


def test_generated_schema_doc_is_up_to_date() -> None:
    """Regenerating the reference part of docs/schema.md changes nothing."""
    current = DOC.read_text()
    assert updated(current) == current, "run: .venv/bin/python -m server.db.schema_doc"
