"""Benchmarks: `python -m tests.bench.run` from the repository root. Not collected by pytest."""
