"""A toy data step for the engine's tests: copy table `toy_a` into `toy_b`, report rows without
a payload. Its class and its SQL files are all it takes; the engine is not touched."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from app.batch import Batch, BatchResult, KeySource, SqlFiles, Step

SQL = SqlFiles(Path(__file__).parent)
ROWS = 1_000  # toy_a's ids are 3, 6, 9, ... (sparse keys); every 50th row has no payload


class ToyCopy(Step):
    name = "toy_copy"
    analyze_after = ("toy_b",)

    def __init__(self, sleep_ms_per_row: float = 0.0) -> None:
        self.sleep_ms_per_row = sleep_ms_per_row  # makes big batches slow, for the split test

    def keys(self, direction: str) -> KeySource:
        return KeySource("toy_a", "id") if direction == "upgrade" else KeySource("toy_b", "id")

    def upgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        r = conn.execute(SQL("upgrade"), {"start": batch.start, "end": batch.end, "run_id": batch.run_id,
                                          "step": self.name, "sleep_ms": self.sleep_ms_per_row}).one()
        return BatchResult(r.rows_read, r.copied + r.reported)

    def downgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        r = conn.execute(SQL("downgrade"), {"start": batch.start, "end": batch.end}).one()
        return BatchResult(r.rows_read, r.deleted)

    def finish(self, conn: Connection, direction: str, run_id: int) -> None:
        if direction == "downgrade":
            conn.execute(SQL("forget_reports"), {"step": self.name})

    def summary(self, conn: Connection, direction: str, run_id: int) -> dict[str, int]:
        return dict(conn.execute(SQL("summary")).mappings().one())


DDL = """
CREATE TABLE toy_a (id bigint PRIMARY KEY, payload text);
CREATE TABLE toy_b (id bigint PRIMARY KEY, payload text NOT NULL);
"""
