"""Benchmarks of the app's core (run from the repository root: ``python -m benchmarks.NAME``)."""
