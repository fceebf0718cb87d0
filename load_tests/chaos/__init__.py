"""Chaos run: faults and races against 2-3 instances, then a check of every guarantee.

``python -m load_tests.chaos --minutes M --seed S --instances N`` (docs/load-testing.md).
"""
