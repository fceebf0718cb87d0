"""The bench's latency table (load_tests/bench): ours beside the baseline's at each W1 rate."""

from __future__ import annotations

from typing import Any

from load_tests.bench.report import latency_rows, latency_table


def w1(best: float, *steps: tuple[float, float, float, bool, bool]) -> dict[str, Any]:
    return {
        "subscribers": 1000,
        "best_deliveries_per_s": best,
        "steps": [
            {
                "offered_edits_per_s": rate,
                "delivery_ms": {"p50": p50, "p99": p99},
                "ok": ok,
                "refined": refined,
            }
            for rate, p50, p99, ok, refined in steps
        ],
    }


def test_each_grid_rate_is_judged_against_the_baseline_up_to_half_our_knee() -> None:
    results = {
        "ours": {
            "W1 N=1000": w1(
                100_000,
                (5, 8.0, 15.0, True, False),  # within 4 / 10 of the baseline: met
                (38, 15.0, 47.0, True, False),  # p99 33 ms over: not met
                (85, 19.0, 48.0, True, False),  # above half the knee: not judged
                (112, 30.0, 49.0, True, True),  # a refinement step: not in the table
            )
        },
        "baseline": {
            "W1 N=1000": w1(
                95_000,
                (5, 5.9, 11.0, True, False),
                (38, 5.8, 13.9, True, False),
                (85, 6.2, 30.6, True, False),
            )
        },
    }
    rows = latency_rows(results)
    assert [(r["offered_deliveries_per_s"], r["within_goal"]) for r in rows] == [
        (5000, True),
        (38000, False),
        (85000, None),
    ]
    assert (rows[1]["ours_p99_ms"], rows[1]["baseline_p99_ms"]) == (47.0, 13.9)
    text = latency_table(rows)
    assert "8.0 / 15.0" in text
    assert "5.9 / 11.0" in text
    assert "NO" in text


def test_without_a_baseline_nothing_is_judged() -> None:
    rows = latency_rows({"ours": {"W1 N=20": w1(1000, (5, 3.0, 9.0, True, False))}})
    assert rows[0]["baseline_p50_ms"] is None
    assert rows[0]["within_goal"] is None
    assert "-" in latency_table(rows)
