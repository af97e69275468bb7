-- toy_copy, downgrade: rows :start..:end of toy_b removed.
WITH gone AS (DELETE FROM toy_b WHERE id BETWEEN :start AND :end RETURNING 1)
SELECT count(*) AS rows_read, count(*) AS deleted FROM gone;
