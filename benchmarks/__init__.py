"""Benchmarks: commands that measure a thing and its baseline in one run."""
