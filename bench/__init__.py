"""Benchmarks of the provider against its baselines (not tests: they print and record numbers).

``make bench`` (``python -m bench.run``) runs them side by side; see :mod:`bench.run`.
"""
