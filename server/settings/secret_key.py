"""``MOODBOARD_SECRET_KEY`` and the retired keys still accepted to verify: how guessable each is."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from server.settings.errors import SettingsError

# The least a secret key must carry by estimated_entropy_bits: "k" * 40 has 0 bits,
# "e2e-secret-" + "x" * 32 about 63; 32 random hex digits (128 real bits) never
# estimate below ~90, secrets.token_urlsafe(32) about 210.
MIN_SECRET_BITS = 80


def estimated_entropy_bits(value: str) -> float:
    """Length times the Shannon entropy of the value's own character frequencies.

    A cheap bound on how guessable a key is that catches repetition (one
    character, a short pattern, a long run); it cannot know that a varied
    but well-known phrase is guessable.
    """
    counts = Counter(value)
    return -sum(n * math.log2(n / len(value)) for n in counts.values())


GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def check_secret_key(variable: str, key: str) -> None:
    """Refuse a key shorter than 32 characters or too predictable to sign with."""
    if len(key) < 32:
        raise SettingsError(variable, "must be at least 32 characters")
    if estimated_entropy_bits(key) < MIN_SECRET_BITS:
        raise SettingsError(
            variable,
            f"too predictable (repeated characters: about {estimated_entropy_bits(key):.0f} "
            f"bits, {MIN_SECRET_BITS} needed); generate one with: {GENERATE_KEY}",
        )


def previous_secret_keys(env: Mapping[str, str], current: str) -> tuple[str, ...]:
    """``MOODBOARD_SECRET_KEY_PREVIOUS``: keys a rotation retired, still accepted to verify.

    Each must pass the same checks as the current key (a guessable old key
    would let anyone forge what it verifies), and the list needs a current key.
    """
    variable = "MOODBOARD_SECRET_KEY_PREVIOUS"
    keys = tuple(k.strip() for k in env.get(variable, "").split(",") if k.strip())
    if keys and not current:
        raise SettingsError(variable, "needs MOODBOARD_SECRET_KEY (the key that signs now)")
    for number, key in enumerate(keys, 1):
        try:
            check_secret_key(variable, key)
        except SettingsError as exc:
            raise SettingsError(variable, f"key {number}: {exc.problem}") from None
        if key == current:
            raise SettingsError(variable, f"key {number} is MOODBOARD_SECRET_KEY itself")
    return tuple(dict.fromkeys(keys))
