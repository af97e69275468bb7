-- Verification for revision 0006 (identity schema). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0006_identity_schema.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

-- Revision 0009 reshapes the undo log's keys and drops the work list (orgmig_identity_todo):
-- once it is applied, alembic/verify/0009_slim_identity_bookkeeping.sql checks those instead.
SELECT 'table ' || t || ' exists' AS check_name,
       to_regclass(t) IS NOT NULL AS ok,
       CASE WHEN to_regclass(t) IS NULL THEN 'missing' ELSE 'present' END AS detail
FROM unnest(ARRAY['user_identity', 'facility', 'org_user_facility', 'orgmig_identity_group',
                  'orgmig_identity_undo', 'orgmig_identity_todo']) AS t
WHERE t <> 'orgmig_identity_todo' OR NOT EXISTS (SELECT 1 FROM alembic_version WHERE version_num >= '0009');

-- The new columns, with their types, defaults and NOT NULL.
WITH expected(tbl, col, type, not_null) AS (
    VALUES ('"user"', 'is_site_admin', 'boolean', true),
           ('org_user', 'all_facilities', 'boolean', true),
           ('idp_user', 'row_id', 'bigint', true),
           ('idp_group', 'row_id', 'bigint', true)
)
SELECT 'column ' || e.tbl || '.' || e.col AS check_name,
       coalesce(format_type(a.atttypid, a.atttypmod) = e.type AND a.attnotnull = e.not_null, false) AS ok,
       coalesce(format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE ' null' END,
                'missing') AS detail
FROM expected e
LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(e.tbl) AND a.attname = e.col AND NOT a.attisdropped;

-- Every constraint the identity contract relies on is present and validated.
WITH expected(conname, contype) AS (
    VALUES ('pk_user_identity', 'p'), ('uq_user_identity_provider_user_id', 'u'),
           ('fk_user_identity_user_id_user', 'f'), ('ck_user_identity_provider_valid', 'c'),
           ('ck_user_identity_matched_by_valid', 'c'),
           ('pk_facility', 'p'), ('uq_facility_id_org_id', 'u'), ('fk_facility_org_id_org', 'f'),
           ('pk_org_user_facility', 'p'), ('fk_org_user_facility_org_id_org_user', 'f'),
           ('fk_org_user_facility_facility_id_facility', 'f'),
           ('uq_idp_user_row_id', 'u'), ('uq_idp_group_row_id', 'u'),
           ('pk_orgmig_identity_group', 'p'), ('ck_orgmig_identity_group_meaning_valid', 'c'),
           ('pk_orgmig_identity_undo', 'p'), ('uq_orgmig_identity_undo_table_name_row_key', 'u'),
           ('ck_orgmig_identity_undo_table_name_valid', 'c')
)
SELECT 'constraint ' || e.conname AS check_name,
       c.oid IS NOT NULL AND c.convalidated AND c.contype::text = e.contype AS ok,
       CASE WHEN c.oid IS NULL THEN 'missing'
            WHEN NOT c.convalidated THEN 'present but NOT VALIDATED'
            WHEN c.contype::text <> e.contype THEN format('wrong kind %s', c.contype)
            ELSE 'present and validated' END AS detail
FROM expected e
LEFT JOIN pg_constraint c ON c.conname = e.conname AND c.connamespace = current_schema()::regnamespace
WHERE e.conname NOT IN ('pk_orgmig_identity_undo', 'uq_orgmig_identity_undo_table_name_row_key')
   OR NOT EXISTS (SELECT 1 FROM alembic_version WHERE version_num >= '0009')
ORDER BY e.conname;

-- A member's facility is always one of the member's org (the composite foreign key says so).
SELECT 'every facility access is to a facility of that org' AS check_name,
       count(*) = 0 AS ok,
       format('%s rows of org_user_facility name a facility of another org', count(*)) AS detail
FROM org_user_facility f
JOIN facility x ON x.id = f.facility_id
WHERE x.org_id <> f.org_id;

-- updated_at is kept current on every UPDATE of the org tables.
SELECT 'updated_at trigger on ' || t AS check_name,
       EXISTS (SELECT 1 FROM pg_trigger g
               WHERE g.tgrelid = to_regclass(quote_ident(t)) AND g.tgname = 'trg_' || t || '_updated_at'
                 AND g.tgenabled <> 'D' AND NOT g.tgisinternal) AS ok,
       CASE WHEN EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = to_regclass(quote_ident(t))
                         AND g.tgname = 'trg_' || t || '_updated_at' AND g.tgenabled = 'D')
            THEN 'present but DISABLED' ELSE 'trg_' || t || '_updated_at' END AS detail
FROM unnest(ARRAY['org', 'user', 'org_user', 'settings', 'facility']) AS t;

-- Indexes the matching and the foreign keys rely on are present and valid.
SELECT 'index ' || n AS check_name,
       coalesce(i.indisvalid AND i.indisready, false) AS ok,
       CASE WHEN i.indexrelid IS NULL THEN 'missing' WHEN NOT i.indisvalid THEN 'INVALID'
            ELSE pg_get_indexdef(i.indexrelid) END AS detail
FROM unnest(ARRAY['ix_user_email_normalized', 'ix_user_identity_user_id', 'ix_facility_org_id',
                  'ix_org_user_facility_facility_id', 'ix_orgmig_identity_undo_user_id',
                  'ix_idp_user_email_normalized']) AS n
LEFT JOIN pg_index i ON i.indexrelid = to_regclass(n)
WHERE n <> 'ix_orgmig_identity_undo_user_id' OR NOT EXISTS (SELECT 1 FROM alembic_version WHERE version_num >= '0009');
