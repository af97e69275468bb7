-- The figures of one run that both its console summary (app.batch.summary) and `orgmig report`
-- show: rows, time, rate, batches, retries. Read-only; a DBA can run it in psql after
-- `\set run_id 1` and `\set live false`.

-- name: run_figures
-- The run's time is the ledger's: from its opening (started_at) to its finish, or, unfinished,
-- to now while a live process works on it (:live), else to its last update.
SELECT r.rows_done, r.total_rows,
       extract(epoch FROM coalesce(r.finished_at, CASE WHEN :live THEN statement_timestamp() ELSE r.updated_at END)
                          - r.started_at)::float8 AS seconds,
       count(b.*) FILTER (WHERE b.status = 'succeeded') AS batches,
       count(b.*) FILTER (WHERE b.attempts > 1) AS retried,
       coalesce(sum(b.attempts - 1) FILTER (WHERE b.attempts > 1), 0) AS extra_attempts
FROM orgmig_run r
LEFT JOIN orgmig_batch b ON b.run_id = r.id
WHERE r.id = :run_id
GROUP BY r.id;
