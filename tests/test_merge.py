"""The field-level merge rule of docs/protocol.md §3.3 (pure, property-tested)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.projects.merge import Apply, Reject, decide

FIELDS = ("x", "y", "w", "h", "z", "data", "name")
field_sets = st.sets(st.sampled_from(FIELDS), max_size=len(FIELDS))


def test_current_base_applies_unmerged() -> None:
    """A write based on the current version applies and is not a merge."""
    assert decide(
        action="update",
        fields={"x"},
        base_version=3,
        current_version=3,
        changed_since_base=set(),
        versions_known=0,
    ) == Apply(merged=False)


@given(
    fields=field_sets.filter(bool),
    changed=field_sets,
    base=st.integers(1, 50),
    ahead=st.integers(1, 20),
)
def test_stale_update_merges_exactly_when_fields_do_not_overlap(
    fields: set[str], changed: set[str], base: int, ahead: int
) -> None:
    """A stale update merges iff no field it sets changed later; a conflict lists the overlap."""
    decision = decide(
        action="update",
        fields=fields,
        base_version=base,
        current_version=base + ahead,
        changed_since_base=changed,
        versions_known=ahead,
    )
    overlap = fields & changed
    if overlap:
        assert decision == Reject(fields=tuple(sorted(overlap)))
    else:
        assert decision == Apply(merged=True)


@given(base=st.integers(1, 50), ahead=st.integers(1, 20), fields=field_sets)
def test_stale_delete_always_conflicts(base: int, ahead: int, fields: set[str]) -> None:
    """A delete with a stale base is a conflict, whatever changed."""
    decision = decide(
        action="delete",
        fields=(),
        base_version=base,
        current_version=base + ahead,
        changed_since_base=fields,
        versions_known=ahead,
    )
    assert isinstance(decision, Reject)


@given(fields=field_sets, base=st.integers(1, 50))
def test_deleted_entity_conflicts(fields: set[str], base: int) -> None:
    """Any write to an entity that no longer exists conflicts with every field it sets."""
    decision = decide(
        action="update",
        fields=fields,
        base_version=base,
        current_version=None,
        changed_since_base=set(),
        versions_known=0,
    )
    assert decision == Reject(fields=tuple(sorted(fields)))


@given(fields=field_sets.filter(bool), base=st.integers(1, 50), ahead=st.integers(2, 20))
def test_missing_history_is_treated_as_a_conflict(fields: set[str], base: int, ahead: int) -> None:
    """When the log no longer holds every later version, nothing merges (no silent overwrite)."""
    decision = decide(
        action="update",
        fields=fields,
        base_version=base,
        current_version=base + ahead,
        changed_since_base=set(),
        versions_known=ahead - 1,
    )
    assert decision == Reject(fields=tuple(sorted(fields)))


@given(fields=field_sets, base=st.integers(2, 50), behind=st.integers(1, 20))
def test_base_from_the_future_conflicts(fields: set[str], base: int, behind: int) -> None:
    """A base_version newer than the entity is refused, never applied."""
    decision = decide(
        action="update",
        fields=fields,
        base_version=base + behind,
        current_version=base,
        changed_since_base=set(),
        versions_known=0,
    )
    assert isinstance(decision, Reject)
