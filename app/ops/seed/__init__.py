"""Synthetic legacy data for the demo, the tests and the benchmarks: the INSERT (generate), the
counts read back (summary), and the call that runs both (load)."""

from app.ops.seed.generate import DST_TIMESTAMPS, seed_offset
from app.ops.seed.load import MAX_USERS, MISSING_TABLE, SEEDS, seed_legacy
from app.ops.seed.summary import SeedSummary, render

__all__ = ["DST_TIMESTAMPS", "MAX_USERS", "MISSING_TABLE", "SEEDS", "SeedSummary", "render", "seed_legacy",
           "seed_offset"]
