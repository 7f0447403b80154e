"""Benchmarks of PX Sync against a local PX sandbox; see docs/benchmarks.md."""
