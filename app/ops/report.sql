-- What `orgmig report RUN_ID` reads about one run: read-only, each statement by the run's id.
-- A DBA can run any of them in psql after `\set run_id 1` (and `\set step 'user_settings_to_org'`,
-- `\set limit 50`).

-- name: run
-- The run, with the server's clock (how long a live run has taken so far).
SELECT id, step, direction, status, batch_size, total_rows, rows_done, cursor_key, max_key,
       last_error, started_at, updated_at, finished_at, statement_timestamp() AS now
FROM orgmig_run
WHERE id = :run_id;

-- name: batch_figures
-- Batches by status, retries, and the durations of the batches that succeeded.
SELECT count(*) AS batches,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'claimed') AS claimed,
       count(*) FILTER (WHERE attempts > 1) AS retried,
       coalesce(sum(attempts - 1) FILTER (WHERE attempts > 1), 0) AS extra_attempts,
       count(*) FILTER (WHERE attempts > 1 OR status = 'failed') AS problems,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE status = 'succeeded') AS median_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE status = 'succeeded') AS p95_ms,
       max(duration_ms) FILTER (WHERE status = 'succeeded') AS max_ms
FROM orgmig_batch
WHERE run_id = :run_id;

-- name: timeline
-- Every batch that succeeded, in the order they finished: when (seconds after the run started),
-- how many rows, how long, whether it took more than one attempt.
SELECT extract(epoch FROM b.finished_at - r.started_at)::float8 AS at_s,
       b.rows_read, b.duration_ms, b.attempts > 1 AS retried
FROM orgmig_batch b
JOIN orgmig_run r ON r.id = b.run_id
WHERE b.run_id = :run_id AND b.status = 'succeeded'
ORDER BY b.finished_at, b.start_key;

-- name: problems
-- Batches that failed or needed more than one attempt, failed ones first, newest first.
SELECT start_key, end_key, status, attempts, rows_read, duration_ms, finished_at, error
FROM orgmig_batch
WHERE run_id = :run_id AND (attempts > 1 OR status = 'failed')
ORDER BY status = 'failed' DESC, finished_at DESC, start_key
LIMIT :limit;

-- name: reasons
-- Reported rows of the run's step by reason: all of them, those not migrated, those this run
-- recorded (a row reported by an earlier run of the step is not reported again).
SELECT reason, count(*) AS total, count(*) FILTER (WHERE NOT migrated) AS not_migrated,
       count(*) FILTER (WHERE run_id = :run_id) AS this_run
FROM orgmig_report
WHERE step = :step
GROUP BY reason
ORDER BY count(*) DESC, reason;
