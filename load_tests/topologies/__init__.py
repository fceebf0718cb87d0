"""Throwaway Redis and PostgreSQL topologies on loopback, stopped by pid.

Shared by the tests (tests/redis_topologies.py, tests/pg_topology.py: they skip
or fail when a binary is missing) and the benchmark's capacity mode
(``python -m load_tests.bench --instances 2 --topology ...``).
"""
