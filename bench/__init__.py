"""Benchmarks: programs that measure the service against baselines run alongside it."""
