"""Latency and throughput measurements: ``python -m benchmarks.NAME``."""
