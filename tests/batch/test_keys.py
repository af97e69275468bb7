"""The key a step walks need not be unique (app.batch.step.KeySource): a batch takes every row of
each key in its range, so rows sharing a key (the identity downgrade walks orgmig_identity_undo by
user_id, one row per write to that user) are done once, together, even where one key holds more
rows than a batch's size."""

from __future__ import annotations

from sqlalchemy import Connection, text

from app.batch import Batch, BatchResult, KeySource, Step, run_step
from tests.batch.toy_copy.fixtures import options
from tests.support.db import scalar

# owner k (1..60) has k % 13 + 1 rows: 1 to 13 rows a key, several keys past the batch size (5)
ROWS = "SELECT sum(k % 13 + 1) FROM generate_series(1, 60) k"


class VisitOwners(Step):
    name = "toy_visit_owners"

    def keys(self, direction: str) -> KeySource:
        return KeySource("toy_owned", "owner")

    def upgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        done = conn.execute(text("UPDATE toy_owned SET visits = visits + 1, batch_start = :start"
                                 " WHERE owner BETWEEN :start AND :end"),
                            {"start": batch.start, "end": batch.end}).rowcount
        return BatchResult(done, done)

    def downgrade(self, conn: Connection, batch: Batch) -> BatchResult:
        return self.upgrade(conn, batch)


def test_rows_sharing_a_key_are_done_once_and_in_one_batch(toy):
    with toy.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE toy_owned (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                             " owner bigint NOT NULL, visits int NOT NULL DEFAULT 0, batch_start bigint)")
        conn.execute(text("INSERT INTO toy_owned (owner) SELECT k FROM generate_series(1, 60) k,"
                          " generate_series(1, k % 13 + 1) n"))
    total = scalar(toy, ROWS)
    result = run_step(toy, VisitOwners(), "upgrade", options(batch_size=5, workers=3))
    assert result.rows_done == result.rows_total == total
    assert scalar(toy, "SELECT count(*) FROM toy_owned WHERE visits <> 1") == 0
    # every owner's rows went in one batch
    assert scalar(toy, "SELECT count(*) FROM (SELECT owner FROM toy_owned GROUP BY owner"
                       " HAVING count(DISTINCT batch_start) > 1) split") == 0
    assert scalar(toy, "SELECT sum(rows_read) FROM orgmig_batch WHERE status = 'succeeded'") == total
