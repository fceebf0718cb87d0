"""The write budget: how long the next write round must wait, from what rounds have cost.

Writing frames is most of a delivery's cost (the kernel's TCP path), and one
round writes every socket that holds frames, each in one system call: the
fewer rounds, the more frames each write carries. Waiting between rounds
buys that, but costs every held frame the wait. So a round waits only when
writing has been taking more than its share of the loop's time
(``WRITING_SHARE``): that is when events arrive faster than rounds write
them one by one, a backlog is forming, and a wait lets the next round carry
several events for the price of one.

The budget is credit in seconds of writing. Time earns it, ``share`` of every
second, up to ``most_credit_s`` (a burst of rounds back to back, as a group
commit's events are, costs no wait); a round spends the time it took. While
the credit is not negative the next round runs at the end of this turn of
the event loop. In debt, it waits until the credit is paid back, at least
``least_wait_s`` (so that many small rounds gather too) and at most
``longest_wait_s`` (the most a write adds to a frame's latency, whatever a
round cost: a long collection inside it). (write_rounds.py keeps its own
rule besides: two rounds are never closer than the write delay.)

Sustained, rounds then take at most ``share`` of the loop (the rest is left
to reading and committing the edits), as the fixed gap after every long
round did (docs/performance.md, Round 5), without holding frames while the
loop is not behind (issue 22 goal 1; docs/benchmarks.md, session 13).
Pure: the caller passes the time (one clock throughout, in seconds).
"""

from __future__ import annotations

WRITING_SHARE = 0.5  # sustained, write rounds take at most this share of the loop's time
MOST_CREDIT_S = 0.01  # the most writing saved up for a burst (20 ms of rounds back to back)
LONGEST_WAIT_S = 0.02  # the most a round waits (and a frame for it), whatever the last cost


class WriteBudget:
    """The credit of writing time an instance's write rounds spend; see the module's text."""

    def __init__(
        self,
        least_wait_s: float,
        share: float = WRITING_SHARE,
        most_credit_s: float = MOST_CREDIT_S,
        longest_wait_s: float = LONGEST_WAIT_S,
    ) -> None:
        assert 0 < share < 1
        assert least_wait_s <= longest_wait_s
        self.share = share
        self.most_credit_s = most_credit_s
        self.least_wait_s = least_wait_s
        self.longest_wait_s = longest_wait_s
        self._credit = most_credit_s  # at ``_counted_at``
        self._counted_at = float("-inf")  # the end of the last round

    @property
    def last_round_ended(self) -> float:
        """When the last round ended (-inf before any)."""
        return self._counted_at

    def credit(self, now: float) -> float:
        """The writing time saved up at ``now`` (negative: a debt)."""
        if self._credit >= self.most_credit_s:
            return self.most_credit_s
        earned = self.share * max(0.0, now - self._counted_at)
        return min(self.most_credit_s, self._credit + earned)

    def wait(self, now: float) -> float:
        """How long after ``now`` a round may run: 0 unless writing is in debt."""
        credit = self.credit(now)
        if credit >= 0:
            return 0.0
        return min(max(self.least_wait_s, -credit / self.share), self.longest_wait_s)

    def spent(self, took: float, now: float) -> None:
        """A round that ended at ``now`` took ``took`` seconds of the loop."""
        credit = self.credit(now - took) - (1 - self.share) * took  # it earned its share meanwhile
        # Never deeper than one longest wait pays back: a round is never held longer.
        self._credit = max(credit, -self.share * self.longest_wait_s)
        self._counted_at = now
