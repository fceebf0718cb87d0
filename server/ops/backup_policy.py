"""Which backups to keep: the newest of each of the last D days and of the last W weeks.

Pure (no I/O): ``moodboard backup`` lists the directory, asks :func:`to_keep`,
and deletes the rest. Days and weeks are UTC calendar days and ISO weeks,
counted back from ``now``'s own: ``keep_daily=7`` keeps one backup for each
of today and the six days before. The newest backup is always kept, whatever
the policy says, so a backup run never deletes what it just made.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # the Monday of its ISO week


def to_keep(
    taken: Iterable[datetime], *, now: datetime, keep_daily: int, keep_weekly: int
) -> set[datetime]:
    """The subset of ``taken`` (aware datetimes) the policy keeps.

    Args:
        taken: when each backup was taken.
        now: the current time (aware).
        keep_daily: days, today included, whose newest backup is kept (0: none).
        keep_weekly: ISO weeks, this one included, whose newest backup is kept (0: none).
    """
    backups = sorted(taken, reverse=True)  # newest first: the first seen per bucket wins
    if not backups:
        return set()
    today = _day(now)
    first_day = today - timedelta(days=keep_daily - 1) if keep_daily > 0 else None
    this_week = _week_start(today)
    first_week = this_week - timedelta(weeks=keep_weekly - 1) if keep_weekly > 0 else None
    keep = {backups[0]}
    days: set[date] = set()
    weeks: set[date] = set()
    for at in backups:
        day = _day(at)
        if first_day is not None and first_day <= day <= today and day not in days:
            days.add(day)
            keep.add(at)
        week = _week_start(day)
        if first_week is not None and first_week <= week <= this_week and week not in weeks:
            weeks.add(week)
            keep.add(at)
    return keep
