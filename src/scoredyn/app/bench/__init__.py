"""Benchmarks inside the package, so `scoredyn bench` runs them from an installed copy."""
