"""Throwaway PostgreSQL topologies for tests (load_tests/topologies/pg_topology.py).

A missing binary skips the test loudly, and fails it under ``CI=true``.
"""

from __future__ import annotations

import pytest

from load_tests.topologies.pg_topology import (
    PgBouncer,
    PgNode,
    pg_binaries_missing,
    pgbouncer,
    postgres_workdir,
    primary_and_standby,
)
from tests.conftest import IN_CI

__all__ = [
    "PgBouncer",
    "PgNode",
    "pgbouncer",
    "postgres_workdir",
    "primary_and_standby",
    "require_binaries",
]


def require_binaries(*names: str) -> None:
    """Skip (fail under CI=true) unless every one of these programs is installed."""
    missing = pg_binaries_missing(*names)
    if missing:
        message = (
            f"!!! {missing}: this PostgreSQL topology test is SKIPPED (.ci/run installs them) !!!"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
