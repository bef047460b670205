"""Benchmark-only tools (never used by the node, never selectable as a backend)."""
