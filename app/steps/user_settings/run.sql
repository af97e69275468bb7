-- Step user_settings_to_org: what runs once per run, before the first batch and with the last.

-- name: user_id_sequence
-- The identity sequence behind "user".id: new users' ids are drawn from it in the batch.
SELECT pg_get_serial_sequence('"user"', 'id');

-- name: forget_reports
DELETE FROM orgmig_report WHERE step = :step;

-- name: summary
SELECT (SELECT count(*) FROM user_settings) AS legacy_rows,
       (SELECT count(*) FROM orgmig_report WHERE step = 'user_settings_to_org'
         AND reason = 'unmapped_legacy_column') AS unmapped_columns,
       count(*) AS migrated,
       count(*) FILTER (WHERE created_user) AS users_created,
       count(*) FILTER (WHERE NOT created_user) AS users_found
FROM orgmig_user_settings_link;

-- name: legacy_columns
-- The legacy table's columns as the catalog has them (the migration converts by actual type).
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'user_settings'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

-- name: report_unmapped_column
-- A legacy column the data contract does not know: not copied anywhere, so reported.
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
SELECT :step, 'user_settings (column)', a.attnum, 'unmapped_legacy_column', false,
       jsonb_build_object('column', a.attname, 'type', format_type(a.atttypid, a.atttypmod)), :run_id
FROM pg_attribute a
WHERE a.attrelid = 'user_settings'::regclass AND a.attname = :column
ON CONFLICT (step, source_table, source_id, reason) DO UPDATE SET detail = EXCLUDED.detail;

-- name: login_start
-- The login path's first round trip: the link of the winning legacy row of one keycloak_user_id
-- (the common case at every later login: one indexed read, and nothing else is done). Where there
-- is none, the subquery m (kept apart by OFFSET 0, so that its WHERE gates it whole) also
-- - takes the lock that makes calls for that keycloak_user_id wait for each other (held until
--   the transaction ends; the next statement's snapshot comes after it, so it sees what an
--   earlier call for the same id committed),
-- - reads the legacy rows of that id (the highest id wins) and the identity sequence behind
--   "user".id,
-- - tells whether the roles :roles exist (only then can the roles' statement be skipped),
-- - and sets the settings :names to :values for the transaction, returning those they replace
--   (read first, in the innermost subquery) as `before`.
WITH found AS MATERIALIZED (
    SELECT l.user_id, l.org_id FROM orgmig_user_settings_link l
    WHERE l.user_settings_id = (SELECT max(id) FROM user_settings WHERE keycloak_user_id = :k)
)
SELECT f.user_id, f.org_id, m.*
FROM (SELECT 1) AS one
LEFT JOIN found f ON true
LEFT JOIN LATERAL (
    SELECT ARRAY(SELECT id FROM user_settings WHERE keycloak_user_id = :k ORDER BY id) AS ids,
           pg_get_serial_sequence('"user"', 'id') AS user_id_sequence,
           (SELECT count(*) FROM role WHERE name = ANY (CAST(:roles AS text[])))
               = cardinality(CAST(:roles AS text[])) AS roles_exist,
           held.before,
           ARRAY(SELECT set_config(n, v, true)
                 FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v)) AS settings
    FROM (SELECT pg_advisory_xact_lock(hashtext('orgmig:migrate_user:' || :k)),
                 ARRAY(SELECT current_setting(n) FROM unnest(CAST(:names AS text[])) AS n) AS before
          OFFSET 0) AS held
    WHERE f.user_id IS NULL
    OFFSET 0
) m ON true;

-- name: settings
-- The settings :names put back to :values for the transaction (the login path inside the
-- caller's transaction: releasing a savepoint keeps what was set in it).
SELECT set_config(n, v, true) FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v);
