-- name: has_tables
-- Whether this database has the steering's tables (revision 0003 of an earlier orgmig created
-- none: such an installation runs unsteered).
SELECT to_regclass('orgmig_steer') IS NOT NULL AND to_regclass('orgmig_steer_decision') IS NOT NULL;

-- Steering (app.batch.health, app.batch.pacer): orgmig_steer holds one row per process working
-- on a run (the row its health probe writes, and what `orgmig status` shows of its controller);
-- orgmig_steer_decision each change the controller made, with its reason.

-- name: open_row
INSERT INTO orgmig_steer (run_id, process, state, reason)
VALUES (:run_id, :process, :state, :reason)
ON CONFLICT (run_id, process) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason,
    allowance_bytes_per_s = NULL, updated_at = now();

-- name: probe
-- The health probe's write: a one-row update committed with synchronous_commit on, so its
-- commit waits for the WAL flush as the application's commits do.
UPDATE orgmig_steer SET probes = probes + 1, probed_at = clock_timestamp()
WHERE run_id = :run_id AND process = :process;

-- name: publish
UPDATE orgmig_steer
SET state = :state, allowance_bytes_per_s = :allowance, used_bytes_per_s = :used,
    wal_bytes_per_row = :bytes_per_row, signal_ms = :signal_ms, baseline_ms = :baseline_ms,
    ratio = :ratio, wal_wait_share = :wal_wait_share, cpu_pressure = :cpu_pressure,
    reason = :reason, updated_at = now()
WHERE run_id = :run_id AND process = :process;

-- name: record_decision
INSERT INTO orgmig_steer_decision (run_id, process, action, allowance_bytes_per_s, ratio, reason)
VALUES (:run_id, :process, :action, :allowance, :ratio, :reason);

-- name: guards
-- The cheap guards, one sample: the other active client backends (not this one, not the run's
-- own connections, which hold its liveness lock) and how many wait on the WAL flush; the step's
-- tables an autovacuum worker is vacuuming now; and the other clients of this database (`others`,
-- the first of them in `other`): its client backends busy now or within the last :recent_s
-- seconds, apart from this one, the run's own, the session holding the migration lock (the
-- alembic command that runs the revision) and `orgmig status` (app.batch.health, "alone").
WITH run_own AS (
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.classid = 1869770088 AND l.objid::bigint = CAST(:run_id AS bigint)
), own AS (
    SELECT pid FROM run_own
    UNION
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = 1869770087 AND l.objid = 0
), others AS (
    SELECT o.pid, o.application_name FROM pg_stat_activity o
    WHERE o.backend_type = 'client backend' AND o.datname = current_database() AND o.pid <> pg_backend_pid()
      AND o.pid NOT IN (SELECT pid FROM own) AND o.application_name <> :status_application
      AND (o.state <> 'idle' OR o.state_change > clock_timestamp() - make_interval(secs => :recent_s))
)
SELECT count(*) FILTER (WHERE a.wait_event IN ('WALSync', 'WALWrite')) AS wal_waiting,
       count(*) AS active,
       (SELECT string_agg(DISTINCT p.relid::regclass::text, ', ')
        FROM pg_stat_progress_vacuum p
        JOIN pg_stat_activity v ON v.pid = p.pid AND v.backend_type = 'autovacuum worker'
        WHERE p.relid = ANY (ARRAY(SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) t))) AS autovacuum,
       (SELECT count(*) FROM others) AS others,
       (SELECT 'pid ' || pid || coalesce(' (' || nullif(application_name, '') || ')', '')
        FROM others ORDER BY pid LIMIT 1) AS other
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend' AND a.state = 'active' AND a.pid <> pg_backend_pid()
  AND a.pid NOT IN (SELECT pid FROM run_own);

-- name: wal_position
-- Where WAL is being inserted now (bytes since 0/0): a batch's WAL is the difference.
SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn;

-- name: status
-- The newest row of each run's processes, for `orgmig status`: its state, its decisions (the
-- readings the monitor notes once a window are not decisions) and the last of them.
SELECT DISTINCT ON (s.run_id) s.run_id, s.process, s.state, s.allowance_bytes_per_s, s.used_bytes_per_s,
       s.wal_bytes_per_row, s.signal_ms, s.baseline_ms, s.ratio, s.wal_wait_share, s.cpu_pressure,
       s.reason, s.updated_at,
       (SELECT count(*) FROM orgmig_steer_decision d WHERE d.run_id = s.run_id AND d.action <> 'reading') AS decisions,
       (SELECT jsonb_build_object('at', d.at, 'action', d.action, 'allowance_bytes_per_s', d.allowance_bytes_per_s,
                                  'ratio', d.ratio, 'reason', d.reason)
        FROM orgmig_steer_decision d
        WHERE d.run_id = s.run_id AND d.process = s.process AND d.action <> 'reading'
        ORDER BY d.id DESC LIMIT 1) AS last_change
FROM orgmig_steer s
WHERE s.run_id = ANY (CAST(:ids AS bigint[]))
ORDER BY s.run_id, s.updated_at DESC;
