"""The write budget (server/realtime/write_budget.py), as a model of a loop's rounds over time.

A Hypothesis state machine runs rounds of any cost at any spacing, with quiet
spells between, and checks what the budget promises: no round waits longer
than the longest wait; sustained, rounds take no more than their share of
the time (plus the saved-up credit and one round); and while each round cost
no more than the loop's time since the last one allows, no round waits at all.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from server.realtime.write_budget import LONGEST_WAIT_S, MOST_CREDIT_S, WRITING_SHARE, WriteBudget

EPS = 1e-9
SHARE = WRITING_SHARE
# The longest round whose debt is kept whole: a longer one's is capped (never a longer wait).
LONGEST_COUNTED = LONGEST_WAIT_S * SHARE / (1 - SHARE)
FILL_S = (MOST_CREDIT_S + SHARE * LONGEST_WAIT_S) / SHARE  # from the deepest debt to full


class RoundsOverTime(RuleBasedStateMachine):
    """One loop's write rounds: each waits as the budget says, then takes what it takes."""

    @initialize(least_wait=st.sampled_from([0.0005, 0.002, 0.02]))
    def start(self, least_wait: float) -> None:
        self.budget = WriteBudget(least_wait_s=least_wait)
        self.least_wait = least_wait
        self.now = 100.0
        self.idle = float("inf")  # the loop's time since the last round ended
        self.keeping_up = True  # every round since the credit was full cost at most what it earned
        self.counted_from = self.now  # since the last round too long to count whole
        self.written = 0.0  # the rounds' time since then

    def run_round(self, took: float) -> None:
        wait = self.budget.wait(self.now)
        assert 0 <= wait <= LONGEST_WAIT_S + EPS
        assert wait == 0 or wait >= self.least_wait - EPS  # a wait gathers at least the delay
        if self.keeping_up:
            assert wait == 0, "a round waited while the loop was keeping up"
        self.now += wait
        self.idle += wait
        # Keeping up: what the round costs, the time before it earned (and the credit holds).
        if took * (1 - SHARE) > min(self.idle * SHARE, MOST_CREDIT_S) - EPS:  # (rounding: strict)
            self.keeping_up = False
        self.now += took
        self.budget.spent(took, self.now)
        self.written += took
        self.idle = 0.0

    @rule(seconds=st.floats(0, 0.05))
    def quiet(self, seconds: float) -> None:
        self.now += seconds
        self.idle += seconds

    @rule(took=st.floats(0, LONGEST_COUNTED))
    def round_(self, took: float) -> None:
        self.run_round(took)

    @rule(took=st.floats(LONGEST_COUNTED, 1.0))
    def round_with_a_long_pause(self, took: float) -> None:
        self.run_round(took)
        self.counted_from, self.written = self.now, 0.0  # its debt is capped: count afresh

    @rule(extra=st.floats(0, 1.0))
    def long_quiet(self, extra: float) -> None:
        self.quiet(FILL_S + extra)
        assert abs(self.budget.credit(self.now) - MOST_CREDIT_S) < EPS  # saved up in full
        self.keeping_up = True

    @invariant()
    def rounds_take_at_most_their_share(self) -> None:
        if not hasattr(self, "budget"):
            return
        allowed = MOST_CREDIT_S + SHARE * (self.now - self.counted_from)
        assert self.written <= allowed + (1 - SHARE) * LONGEST_COUNTED + EPS


TestRoundsOverTime = RoundsOverTime.TestCase


def test_back_to_back_rounds_settle_at_the_share_of_the_time() -> None:
    """Rounds wanted the moment the last ends (a backlog): after the credit, half the time."""
    budget, now, written, waits = WriteBudget(least_wait_s=0.002), 0.0, 0.0, []
    for _ in range(200):
        wait = budget.wait(now)
        waits.append(wait)
        now += wait + 0.006  # a thousand sockets' round
        written += 0.006
        budget.spent(0.006, now)
    assert waits[0] == 0
    assert waits[-1] > 0
    assert (
        written <= SHARE * now + MOST_CREDIT_S + (1 - SHARE) * 0.006 + 1e-9
    )  # (the last one's debt)
    assert written / now > SHARE - 0.01  # and no less: the loop is not held idle either


def test_a_burst_of_rounds_after_a_quiet_spell_waits_for_none_of_them() -> None:
    """A group commit's events, one round each, back to back: the saved credit covers them."""
    budget, now = WriteBudget(least_wait_s=0.002), 50.0
    for _ in range(4):  # a 6 ms round costs 3 ms of credit net of what it earns: 4 x 3 > 10
        assert budget.wait(now) == 0
        now += 0.006
        budget.spent(0.006, now)
    assert budget.wait(now) > 0  # the fourth ran on the last of the credit: the next one gathers
