"""Synthetic legacy data for the demo, the tests and the benchmarks."""

from app.ops.seed.generate import DST_TIMESTAMPS, MISSING_TABLE, SeedSummary, seed_legacy, seed_offset

__all__ = ["DST_TIMESTAMPS", "MISSING_TABLE", "SeedSummary", "seed_legacy", "seed_offset"]
