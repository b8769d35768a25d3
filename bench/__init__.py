"""Benchmarks. `python -m bench` (or `make bench`) runs them and rewrites BENCHMARKS.md."""
