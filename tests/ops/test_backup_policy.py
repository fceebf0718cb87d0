"""The backup retention policy (server/ops/backup_policy.py), tested directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from server.ops.backup_policy import to_keep

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday


def every_6_hours(days: int) -> list[datetime]:
    return [NOW - timedelta(hours=6 * n) for n in range(days * 4)]


def test_daily_keeps_the_newest_of_each_of_the_last_days() -> None:
    """keep_daily=7: one backup per day for today and the six days before, the newest of each."""
    taken = every_6_hours(30)
    kept = to_keep(taken, now=NOW, keep_daily=7, keep_weekly=0)
    assert len(kept) == 7
    for back in range(7):
        day = (NOW - timedelta(days=back)).date()
        of_day = [t for t in taken if t.date() == day]
        assert max(of_day) in kept
    assert min(kept).date() == (NOW - timedelta(days=6)).date()


def test_weekly_keeps_the_newest_of_each_iso_week() -> None:
    """keep_weekly=4: the newest backup of this ISO week and of each of the three before."""
    taken = every_6_hours(60)
    kept = to_keep(taken, now=NOW, keep_daily=0, keep_weekly=4)
    mondays = {(t - timedelta(days=t.weekday())).date() for t in kept}
    assert len(kept) == 4 == len(mondays)
    # Before this week, each kept one is its week's last backup (Sunday, 21:00).
    for at in kept - {max(taken)}:
        assert (at.weekday(), at.hour) == (6, 21)


def test_daily_and_weekly_together_share_backups() -> None:
    """A backup that is both its day's and its week's newest is kept once."""
    taken = every_6_hours(60)
    kept = to_keep(taken, now=NOW, keep_daily=7, keep_weekly=4)
    # Today's newest is this week's; last Sunday's (in the 7 days) is last week's.
    assert len(kept) == 7 + 4 - 2


def test_the_newest_backup_is_kept_even_with_a_zero_policy() -> None:
    """keep 0 days and 0 weeks: only the newest backup stays (a run never deletes its own)."""
    taken = every_6_hours(3)
    assert to_keep(taken, now=NOW, keep_daily=0, keep_weekly=0) == {max(taken)}
    assert to_keep([], now=NOW, keep_daily=7, keep_weekly=4) == set()


def test_old_backups_outside_every_window_go() -> None:
    """A backup older than both windows is not kept, even if it is alone in its week."""
    old = NOW - timedelta(days=400)
    kept = to_keep([old, NOW], now=NOW, keep_daily=7, keep_weekly=4)
    assert kept == {NOW}


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 27, 9), timezones=st.just(UTC)
)


@given(st.lists(moments, max_size=60, unique=True), st.integers(0, 10), st.integers(0, 6))
def test_policy_properties(taken: list[datetime], daily: int, weekly: int) -> None:
    """Kept is a subset, holds the newest, and has at most one per day/week bucket (+ newest)."""
    kept = to_keep(taken, now=NOW, keep_daily=daily, keep_weekly=weekly)
    assert kept <= set(taken)
    if taken:
        assert max(taken) in kept
    assert len(kept) <= daily + weekly + 1
    for at in kept - ({max(taken)} if taken else set()):
        same_day = [t for t in taken if t.date() == at.date()]
        monday = at.date() - timedelta(days=at.weekday())
        same_week = [t for t in taken if t.date() - timedelta(days=t.weekday()) == monday]
        assert at == max(same_day) or at == max(same_week)
