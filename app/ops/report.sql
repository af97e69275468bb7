-- What `orgmig report RUN_ID` reads about one run: read-only, each statement by the run's id.
-- A DBA can run any of them in psql after `\set run_id 1` (and `\set step 'user_settings_to_org'`,
-- `\set limit 50`, `\set samples 5`). The run's rows, time, rate, batches and retried batches
-- are app/batch/sql/summary.sql's `run_figures`, the figures of the console summary.

-- name: batch_figures
-- Batches by status, those that failed or were retried, and the durations of the batches that
-- succeeded.
SELECT count(*) AS batches,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'claimed') AS claimed,
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
-- recorded (a row reported by an earlier run of the step is not reported again), and the first
-- :samples of them by source table and id.
SELECT g.reason, g.total, g.not_migrated, g.this_run, s.samples
FROM (
    SELECT reason, count(*) AS total, count(*) FILTER (WHERE NOT migrated) AS not_migrated,
           count(*) FILTER (WHERE run_id = :run_id) AS this_run
    FROM orgmig_report
    WHERE step = :step
    GROUP BY reason
) g
CROSS JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('table', source_table, 'id', source_id)
                     ORDER BY source_table, source_id) AS samples
    FROM (SELECT source_table, source_id FROM orgmig_report
          WHERE step = :step AND reason = g.reason
          ORDER BY source_table, source_id
          LIMIT :samples) first
) s
ORDER BY g.total DESC, g.reason;

-- name: steer_decisions
-- The steering's decisions and, once a signal window, its readings (action 'reading'), in order:
-- when (seconds after the run started), the allowance after it, the signal over its baseline, why.
SELECT extract(epoch FROM d.at - r.started_at)::float8 AS at_s, d.action,
       d.allowance_bytes_per_s AS allowance, d.ratio, d.reason
FROM orgmig_steer_decision d
JOIN orgmig_run r ON r.id = d.run_id
WHERE d.run_id = :run_id
ORDER BY d.id;
