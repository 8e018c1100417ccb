"""Benchmarks of the local stack against raw baselines measured beside them (`make bench`)."""
