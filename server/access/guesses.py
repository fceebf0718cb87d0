"""Password checks as guesses: counted before they are checked, checked off the event loop.

Logging in and deleting one's account both check a password, so both are
throttled like a login (the same per-account and per-address counters,
server/access/throttle.py): a stolen session cannot be used to guess the
password at full speed through ``DELETE /api/me``.
"""

from __future__ import annotations

from server import metrics
from server.access import audit
from server.access.hashing import verify_in_pool
from server.access.principal import Principal
from server.access.tables import AppUser
from server.access.throttle import LoginThrottle, throttle_keys
from server.errors import RateLimited, Unauthorized


async def verify_guess(
    throttle: LoginThrottle, keys: list[str], password_hash: str, password: str, *, scope: str
) -> bool:
    """Whether ``password`` matches, as one counted guess on ``keys``.

    The attempt is counted first (atomically), so concurrent guesses past the
    limit are refused before any is checked; a right guess is forgiven.

    Raises:
        RateLimited: the limit is reached on one of ``keys`` (nothing checked).
    """
    wait = await throttle.attempt(keys)
    if wait is not None:
        metrics.RATE_LIMITED.labels(scope).inc()
        raise RateLimited(f"too many failed attempts; try again in {wait} s", retry_after=wait)
    ok = await verify_in_pool(password_hash, password)
    if ok:
        await throttle.forgive(keys)
    else:
        metrics.AUTH_FAILURES.labels("password").inc()
    return ok


async def confirm_password(
    throttle: LoginThrottle, caller: Principal, password: str, *, ip: str | None
) -> None:
    """Check the caller's own password (``DELETE /api/me``), throttled like a login.

    Raises:
        RateLimited: too many wrong passwords for this account or address (audited).
        Unauthorized: wrong password (audited ``account.delete_refused``).
    """
    row = (
        await AppUser.select(AppUser.email, AppUser.password_hash)
        .where(AppUser.id == caller.user_id)
        .first()
    )
    if row is None:
        raise Unauthorized("this account no longer exists")
    keys = throttle_keys(row["email"], ip)
    try:
        ok = await verify_guess(throttle, keys, row["password_hash"], password, scope="login")
    except RateLimited:
        await audit.record("account.delete_throttled", actor_id=caller.user_id, ip=ip)
        raise
    if not ok:
        await audit.record("account.delete_refused", actor_id=caller.user_id, ip=ip)
        raise Unauthorized("password: wrong password")
