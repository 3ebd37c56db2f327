"""Benchmarks that print JSON: `venue bench WHAT --json`. Tests never time anything."""
