-- The batch engine's ledger: orgmig_run (one row per run of a step in one direction) and
-- orgmig_batch (one row per claimed key range). Every statement the engine runs on them.
-- {table}, {key} and {scope} are the keyset the run walks (app.batch.step.KeySource).

-- name: lock_step
-- One opener at a time per step: a second one waits here, then finds the run the first opened.
SELECT pg_advisory_xact_lock(hashtext('orgmig:' || :step));

-- name: open_run
SELECT * FROM orgmig_run
WHERE step = :step AND direction = :direction AND status NOT IN ('finished', 'cancelled')
FOR UPDATE;

-- name: resume_run
UPDATE orgmig_run SET status = 'running', last_error = NULL, updated_at = now()
WHERE id = :run_id;

-- name: cancel_other_direction
-- A new run in one direction supersedes an unfinished run in the other.
UPDATE orgmig_run
SET status = 'cancelled', updated_at = now(), last_error = 'superseded by a ' || :direction || ' run'
WHERE step = :step AND direction <> :direction AND status NOT IN ('finished', 'cancelled');

-- name: last_finished
SELECT direction, max_key FROM orgmig_run
WHERE step = :step AND status = 'finished'
ORDER BY id DESC LIMIT 1;

-- name: bounds
-- The key range a new run walks, fixed at its start; `:lower` skips what an earlier finished
-- upgrade already covered.
SELECT min({key}) AS min_key, max({key}) AS max_key, count(*) AS total
FROM {table}
WHERE ({scope}) AND {key} >= coalesce(CAST(:lower AS bigint), {key});

-- name: insert_run
INSERT INTO orgmig_run (step, direction, status, batch_size, min_key, max_key, cursor_key, total_rows)
VALUES (:step, :direction, 'running', :batch_size, :min_key, :max_key, CAST(:min_key AS bigint) - 1,
        :total)
RETURNING *;

-- name: rows_written
-- What a run's batches wrote (every process that worked on it).
SELECT coalesce(sum(rows_written), 0) FROM orgmig_batch WHERE run_id = :run_id;

-- name: unfinished_batches
-- Ranges a killed run claimed but did not finish, and failed ones: redone first.
SELECT start_key, end_key FROM orgmig_batch
WHERE run_id = :run_id AND status <> 'succeeded'
ORDER BY start_key;

-- name: lock_cursor
SELECT cursor_key, pause_requested, rows_done, total_rows FROM orgmig_run
WHERE id = :run_id
FOR UPDATE;

-- name: next_end
-- The key `:size` rows past the cursor (so batches are full on sparse keys), else the last key.
SELECT coalesce(
    (SELECT {key} FROM {table}
     WHERE ({scope}) AND {key} > :cursor AND {key} <= :max_key
     ORDER BY {key} OFFSET :size - 1 LIMIT 1),
    :max_key) AS end_key;

-- name: advance_cursor
-- (batch_size: the size this claim used, which an adaptive batch size changes)
UPDATE orgmig_run SET cursor_key = :end_key, batch_size = :batch_size, updated_at = now() WHERE id = :run_id;

-- name: batch_lock
-- The lock a worker holds on a range it works on (a session lock: it outlives the claim's
-- transaction, and a dead worker's connection takes it along). Keyed on the run and the range's
-- first key.
SELECT pg_try_advisory_lock(hashtextextended('orgmig:batch:' || :run_id || ':' || :start_key, 0));

-- name: batch_unlock
SELECT pg_advisory_unlock(hashtextextended('orgmig:batch:' || :run_id || ':' || :start_key, 0));

-- name: batch_status
SELECT status FROM orgmig_batch WHERE run_id = :run_id AND start_key = :start_key;

-- name: record_batch
-- Claimed, succeeded or failed: one row per range, the latest state wins, but succeeded is final.
INSERT INTO orgmig_batch (run_id, start_key, end_key, status, rows_read, rows_written, attempts,
                          duration_ms, error)
VALUES (:run_id, :start_key, :end_key, :status, :rows_read, :rows_written, :attempts,
        :duration_ms, :error)
ON CONFLICT (run_id, start_key) DO UPDATE SET
    end_key = EXCLUDED.end_key, status = EXCLUDED.status, rows_read = EXCLUDED.rows_read,
    rows_written = EXCLUDED.rows_written, attempts = EXCLUDED.attempts,
    duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error, finished_at = now()
-- a range once succeeded stays so: a failure recorded late (its commit's answer was lost with the
-- connection) must not send it round again
WHERE orgmig_batch.status <> 'succeeded';

-- name: add_rows_done
UPDATE orgmig_run SET rows_done = rows_done + :rows, updated_at = now() WHERE id = :run_id;

-- name: set_status
-- `:status` NULL keeps the status; `:error` NULL clears the last error.
UPDATE orgmig_run
SET status = coalesce(CAST(:status AS text), status), last_error = :error, updated_at = now()
WHERE id = :run_id;

-- name: count_unfinished
SELECT count(*) FROM orgmig_batch WHERE run_id = :run_id AND status <> 'succeeded';

-- name: finish_run
UPDATE orgmig_run
SET status = 'finished', finished_at = now(), updated_at = now(), rows_done = total_rows,
    last_error = NULL
WHERE id = :run_id;

-- name: reported
SELECT reason, count(*) AS rows FROM orgmig_report
WHERE step = :step
GROUP BY reason ORDER BY reason;

-- name: liveness_lock
-- Held, shared, by every connection working on run :run_id (the process that runs it and each
-- worker, of this process or of `orgmig work`); `orgmig status` reads pg_locks to tell a live
-- run from one whose processes died, and counts its workers. Keys: "ormh", run id.
SELECT pg_advisory_lock_shared(1869770088, CAST(:run_id AS integer));

-- name: worker_lock
-- Held, shared, besides the liveness lock, by each worker's connection (not by a process's own
-- connection), so `orgmig status` counts workers, not connections. Keys: "ormw", run id.
SELECT pg_advisory_lock_shared(1869770103, CAST(:run_id AS integer));

-- name: has_settings
-- Whether orgmig_run has its settings column (revision 0003 of an earlier orgmig created it
-- without one; such an installation runs as before and records no settings).
SELECT EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = 'orgmig_run'::regclass AND attname = 'settings' AND NOT attisdropped);

-- name: record_settings
-- How the process that starts or resumes the run runs it (a resumed run shows its latest).
UPDATE orgmig_run SET settings = CAST(:settings AS jsonb) WHERE id = :run_id;
