"""W1's knee refinement (load_tests/bench): which rate it tries between two steps."""

from __future__ import annotations

from typing import Any

from load_tests.bench.workloads import between_knee


def steps(*results: tuple[float, bool]) -> list[dict[str, Any]]:
    return [{"offered_edits_per_s": rate, "ok": ok} for rate, ok in results]


def test_halfway_between_the_best_pass_and_the_next_failure() -> None:
    swept = steps((50, True), (70, True), (100, True), (150, False), (200, False))
    assert between_knee(swept) == 125


def test_each_refined_step_halves_the_gap_again() -> None:
    swept = steps((100, True), (150, False), (200, False))
    assert between_knee([*swept, *steps((125, False))]) == 112
    assert between_knee([*swept, *steps((125, True))]) == 138


def test_a_lucky_pass_above_a_failure_moves_the_gap_up() -> None:
    swept = steps((100, True), (150, False), (200, True), (300, False), (500, False))
    assert between_knee(swept) == 250


def test_nothing_to_refine_without_a_pass_a_failure_above_it_or_room() -> None:
    assert between_knee(steps((2, False), (5, False))) is None
    assert between_knee(steps((4000, True), (5000, True))) is None  # the top rate passed
    assert between_knee(steps((100, True), (101, False))) is None
