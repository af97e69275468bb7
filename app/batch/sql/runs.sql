-- The runs the ledger records (orgmig_run), as everything outside the engine's loop reads them:
-- `orgmig status`, `orgmig verify`, `orgmig pause`/`resume`, `orgmig work`, `orgmig finalize`,
-- the revisions that wait for a step, and the identity step's downgrade. The engine's own
-- statements on the same tables are in ledger.sql. Read through app.batch.runs.

-- name: exists
SELECT to_regclass('orgmig_run') IS NOT NULL;

-- name: recent
-- The newest runs, every column but settings (an installation whose revision 0003 predates the
-- column has none; `orgmig report` reads it where it is).
SELECT id, step, direction, status, batch_size, min_key, max_key, cursor_key, total_rows, rows_done,
       pause_requested, last_error, started_at, updated_at, finished_at
FROM orgmig_run
ORDER BY id DESC
LIMIT :limit;

-- name: one
-- One run, and how it was run (settings: workers, batch size, throttle, timeouts).
-- (settings read through to_jsonb: an installation whose orgmig_run predates the column has none)
SELECT id, step, direction, status, batch_size, cursor_key, max_key, last_error, to_jsonb(r) -> 'settings' AS settings,
       started_at, updated_at, finished_at
FROM orgmig_run r
WHERE id = :run_id;

-- name: last_upgrade
-- The latest upgrade run of a step, whatever its status.
SELECT id, status, rows_done, total_rows FROM orgmig_run
WHERE step = :step AND direction = 'upgrade'
ORDER BY id DESC LIMIT 1;

-- name: first_running
-- The oldest run that is running (of :step, when given).
SELECT step, direction FROM orgmig_run
WHERE status = 'running' AND (CAST(:step AS text) IS NULL OR step = :step)
ORDER BY id LIMIT 1;

-- name: step_names
-- The steps with a run recorded whose name starts with :prefix (a step family's, say).
SELECT DISTINCT step FROM orgmig_run WHERE step LIKE :prefix || '%';

-- name: flag_pause
-- :pause true asks the unfinished runs to stop after their current batch; false clears the
-- request of the runs that have one. Only :step's when given. Returns each run as it was.
WITH hit AS (
    SELECT id, step, direction, status, rows_done, total_rows, cursor_key FROM orgmig_run
    WHERE CASE WHEN CAST(:pause AS boolean) THEN status IN ('running', 'failed', 'paused')
               ELSE pause_requested END
      AND (CAST(:step AS text) IS NULL OR step = :step)
    FOR UPDATE
)
UPDATE orgmig_run r SET pause_requested = CAST(:pause AS boolean), updated_at = now()
FROM hit
WHERE r.id = hit.id
RETURNING hit.*;

-- name: reported
-- The rows the steps reported (orgmig_report), counted by step, reason and whether migrated.
SELECT step, reason, migrated, count(*) AS rows FROM orgmig_report
GROUP BY step, reason, migrated
ORDER BY step, reason;

-- name: live
-- Runs a live process works on: the holders of their liveness locks (ledger.liveness_lock, one
-- row per connection), each saying whether it is a worker's (ledger.worker_lock).
SELECT l.objid::bigint AS run_id, l.pid,
       EXISTS (SELECT 1 FROM pg_locks w
               WHERE w.locktype = 'advisory' AND w.classid = 1869770103 AND w.objid = l.objid
                 AND w.objsubid = 2 AND w.granted AND w.pid = l.pid AND w.database = l.database) AS worker
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.classid = 1869770088 AND l.objsubid = 2 AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());

-- name: unfinished
-- Runs neither finished nor cancelled, oldest first.
SELECT id, step, direction, status, rows_done, total_rows, cursor_key, last_error, updated_at
FROM orgmig_run
WHERE status NOT IN ('finished', 'cancelled')
ORDER BY id;

-- name: stats
-- Per run: batches done, retries (attempts past the first), rows done in the last minute.
SELECT run_id,
       count(*) FILTER (WHERE status = 'succeeded') AS batches,
       coalesce(sum(greatest(attempts - 1, 0)), 0) AS retries,
       coalesce(sum(rows_read) FILTER (WHERE status = 'succeeded' AND finished_at > now() - interval '1 minute'), 0)
           AS rows_last_minute,
       (SELECT min(finished_at) FROM orgmig_batch y WHERE y.run_id = b.run_id AND y.status = 'succeeded'
          AND y.finished_at > now() - interval '1 minute') AS window_start
FROM orgmig_batch b
WHERE run_id = ANY (CAST(:ids AS bigint[]))
GROUP BY run_id;
