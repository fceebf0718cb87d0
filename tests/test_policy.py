"""The permission policy: effective roles and what each role may do (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.access.policy import RANK, can, highest, may_invite, role_for
from server.types import PROJECT_ROLES

roles = st.sampled_from(PROJECT_ROLES)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (None, set()),
        ("viewer", {"project.read", "members.read"}),
        ("editor", {"project.read", "members.read", "project.edit", "generation.request"}),
        (
            "owner",
            {
                "project.read",
                "members.read",
                "project.edit",
                "generation.request",
                "project.delete",
                "members.manage",
            },
        ),
    ],
)
def test_what_each_role_may_do(role: str | None, allowed: set[str]) -> None:
    """Viewers read, editors also edit and generate, owners also delete and manage members."""
    actions = (
        "project.read",
        "members.read",
        "project.edit",
        "generation.request",
        "project.delete",
        "members.manage",
    )
    assert {a for a in actions if can(role, a)} == allowed  # type: ignore[arg-type]


@given(direct=st.none() | roles, teams=st.lists(roles, max_size=4))
def test_effective_role_is_the_highest(direct: str | None, teams: list[str]) -> None:
    """The effective role is the highest of the direct membership and every team grant."""
    effective = role_for(direct, teams)  # type: ignore[arg-type]
    candidates = [r for r in [direct, *teams] if r is not None]
    if not candidates:
        assert effective is None
    else:
        assert effective is not None
        assert RANK[effective] == max(RANK[r] for r in candidates)  # type: ignore[index]


@given(direct=st.none() | roles, teams=st.lists(roles, max_size=4))
def test_deleted_project_gives_no_role(direct: str | None, teams: list[str]) -> None:
    """Nobody keeps a role on a deleted project, whatever their grants."""
    assert role_for(direct, teams, deleted=True) is None  # type: ignore[arg-type]


@given(more=st.lists(roles, min_size=1, max_size=5), role=roles)
def test_more_grants_never_reduce_what_one_may_do(more: list[str], role: str) -> None:
    """Adding a team grant can only add permissions (access inheritance is monotone)."""
    before = role_for(role, [])  # type: ignore[arg-type]
    after = role_for(role, more)  # type: ignore[arg-type]
    assert before is not None
    assert after is not None
    assert RANK[after] >= RANK[before]
    assert highest([]) is None


@pytest.mark.parametrize("invited", PROJECT_ROLES)
def test_only_owners_may_invite_and_only_with_a_role_up_to_theirs(invited: str) -> None:
    """Owners may invite with any role; editors, viewers and non-members with none."""
    assert may_invite("owner", invited)  # type: ignore[arg-type]
    for role in (None, "viewer", "editor"):
        assert not may_invite(role, invited)  # type: ignore[arg-type]
