-- Verification for revision 0009 (the identity step's bookkeeping without what a sync does not
-- read). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0009_slim_identity_bookkeeping.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

-- The undo log is keyed by the row it records: no surrogate id, (table_name, row_key) its
-- primary key, no other unique constraint beside it.
SELECT 'column orgmig_identity_undo.id is gone' AS check_name,
       NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass('orgmig_identity_undo')
                   AND a.attname = 'id' AND NOT a.attisdropped) AS ok,
       CASE WHEN to_regclass('orgmig_identity_undo') IS NULL THEN 'table orgmig_identity_undo missing'
            WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass('orgmig_identity_undo')
                         AND a.attname = 'id' AND NOT a.attisdropped) THEN 'present'
            ELSE 'absent' END AS detail;

SELECT 'primary key of orgmig_identity_undo is (table_name, row_key)' AS check_name,
       coalesce(c.convalidated AND pg_get_constraintdef(c.oid) = 'PRIMARY KEY (table_name, row_key)', false) AS ok,
       coalesce(c.conname || ': ' || pg_get_constraintdef(c.oid), 'missing') AS detail
FROM (SELECT 1) one
LEFT JOIN pg_constraint c ON c.conrelid = to_regclass('orgmig_identity_undo') AND c.contype = 'p';

-- No index the runs do not read: the key's and none other (the identity downgrade builds the one
-- on user_id while it runs and drops it when it finishes).
SELECT 'indexes of orgmig_identity_undo' AS check_name,
       count(*) FILTER (WHERE c.relname <> 'pk_orgmig_identity_undo') = 0 AS ok,
       coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), 'none') AS detail
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass('orgmig_identity_undo');

-- The work list of revision 0006 is gone: a run walks the accounts its plan keeps.
SELECT 'table orgmig_identity_todo is gone' AS check_name,
       to_regclass('orgmig_identity_todo') IS NULL AS ok,
       CASE WHEN to_regclass('orgmig_identity_todo') IS NULL THEN 'absent' ELSE 'present' END AS detail;
