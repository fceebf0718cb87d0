"""The benchmark suite (issue 8): ``python -m load_tests.bench --help``; see docs/benchmarks.md."""
