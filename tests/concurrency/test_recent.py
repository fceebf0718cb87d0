"""The shared, bounded store of made-once values (server/concurrency/recent.py)."""

from __future__ import annotations

from server.concurrency.recent import Recent


def test_a_value_is_made_once_per_key_and_shared() -> None:
    made: list[str] = []

    def make(source: str) -> list[str]:
        made.append(source)
        return [source]

    recent: Recent[tuple[str, int], list[str]] = Recent(10)
    first = recent.get(("p", 1), make, "a")
    assert recent.get(("p", 1), make, "ignored") is first  # the same object, not made again
    assert recent.get(("p", 2), make, "b") == ["b"]
    assert made == ["a", "b"]


def test_it_never_holds_more_than_its_limit() -> None:
    recent: Recent[int, int] = Recent(3)
    for key in range(10):
        assert recent.get(key, lambda n: n * n, key) == key * key
        assert len(recent) <= 3
    assert recent.get(9, lambda n: -1, 0) == 81  # the newest is still kept
