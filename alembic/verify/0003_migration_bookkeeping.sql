-- Verification for revision 0003 (migration bookkeeping). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0003_migration_bookkeeping.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

SELECT 'table ' || t || ' exists' AS check_name,
       to_regclass(t) IS NOT NULL AS ok,
       CASE WHEN to_regclass(t) IS NULL THEN 'missing' ELSE 'present' END AS detail
FROM unnest(ARRAY['orgmig_run', 'orgmig_batch', 'orgmig_report', 'orgmig_user_settings_link', 'orgmig_created_row',
                   'orgmig_steer', 'orgmig_steer_decision']) AS t;

WITH expected(conname, contype) AS (
    VALUES
        ('pk_orgmig_run', 'p'), ('ck_orgmig_run_direction_valid', 'c'), ('ck_orgmig_run_status_valid', 'c'),
        ('ck_orgmig_run_batch_size_positive', 'c'),
        ('pk_orgmig_batch', 'p'), ('fk_orgmig_batch_run_id_orgmig_run', 'f'),
        ('uq_orgmig_batch_run_id_start_key', 'u'), ('ck_orgmig_batch_status_valid', 'c'),
        ('ck_orgmig_batch_range_ordered', 'c'),
        ('pk_orgmig_report', 'p'), ('fk_orgmig_report_run_id_orgmig_run', 'f'),
        ('uq_orgmig_report_step_source_table_source_id_reason', 'u'),
        ('pk_orgmig_user_settings_link', 'p'),
        ('pk_orgmig_created_row', 'p'),
        ('pk_orgmig_steer', 'p'), ('fk_orgmig_steer_run_id_orgmig_run', 'f'),
        ('pk_orgmig_steer_decision', 'p'), ('fk_orgmig_steer_decision_run_id_orgmig_run', 'f')
)
SELECT 'constraint ' || e.conname AS check_name,
       c.oid IS NOT NULL AND c.convalidated AND c.contype::text = e.contype AS ok,
       CASE WHEN c.oid IS NULL THEN 'missing'
            WHEN NOT c.convalidated THEN 'present but NOT VALIDATED'
            WHEN c.contype::text <> e.contype THEN format('wrong kind %s', c.contype)
            ELSE 'present and validated' END AS detail
FROM expected e
LEFT JOIN pg_constraint c
       ON c.conname = e.conname
      AND c.connamespace = current_schema()::regnamespace
ORDER BY e.conname;

-- The partial unique index that allows one unfinished run per step and direction.
SELECT 'unique index uq_orgmig_run_active is valid' AS check_name,
       coalesce(bool_and(i.indisvalid AND i.indisunique AND i.indpred IS NOT NULL), false) AS ok,
       CASE WHEN count(*) = 0 THEN 'missing'
            WHEN bool_and(i.indisvalid) THEN 'present and valid' ELSE 'INVALID' END AS detail
FROM pg_index i
WHERE i.indexrelid = to_regclass('uq_orgmig_run_active');

SELECT 'no invalid index on the bookkeeping tables' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all indexes valid'
            ELSE 'invalid: ' || string_agg(ic.relname, ', ') END AS detail
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid IN (to_regclass('orgmig_run'), to_regclass('orgmig_batch'),
                     to_regclass('orgmig_report'), to_regclass('orgmig_user_settings_link'))
  AND NOT (i.indisvalid AND i.indisready);

SELECT 'index behind foreign key ' || c.conname AS check_name,
       EXISTS (
           SELECT 1 FROM pg_index i
           WHERE i.indrelid = c.conrelid
             AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey
             AND i.indisvalid
       ) AS ok,
       format('%s(%s)', c.conrelid::regclass,
              (SELECT string_agg(attname, ', ') FROM pg_attribute
               WHERE attrelid = c.conrelid AND attnum = ANY (c.conkey))) AS detail
FROM pg_constraint c
WHERE c.contype = 'f'
  AND c.conrelid IN (to_regclass('orgmig_batch'), to_regclass('orgmig_report'),
                     to_regclass('orgmig_user_settings_link'), to_regclass('orgmig_steer'),
                     to_regclass('orgmig_steer_decision'))
ORDER BY c.conname;

-- Runs are internally consistent: a finished run has a finish time and did all its rows.
SELECT 'finished runs are complete' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every finished run has finished_at and rows_done = total_rows'
            ELSE 'inconsistent runs: ' || string_agg(id::text, ', ') END AS detail
FROM orgmig_run
WHERE status = 'finished' AND (finished_at IS NULL OR rows_done <> total_rows);
