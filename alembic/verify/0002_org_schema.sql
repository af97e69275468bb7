-- Verification for revision 0002 (organizational schema). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0002_org_schema.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

-- The five tables exist.
SELECT 'table ' || t || ' exists' AS check_name,
       to_regclass(quote_ident(t)) IS NOT NULL AS ok,
       CASE WHEN to_regclass(quote_ident(t)) IS NULL THEN 'missing' ELSE 'present' END AS detail
FROM unnest(ARRAY['role', 'org', 'user', 'org_user', 'settings']) AS t;

-- Every constraint the data contract relies on is present and validated.
WITH expected(conname, contype) AS (
    VALUES
        ('pk_role', 'p'), ('uq_role_name', 'u'), ('ck_role_rank_positive', 'c'),
        ('pk_org', 'p'), ('uq_org_name', 'u'), ('ck_org_name_not_blank', 'c'),
        ('pk_user', 'p'), ('uq_user_keycloak_user_id', 'u'), ('uq_user_legacy_user_settings_id', 'u'),
        ('fk_user_current_org_id_org', 'f'), ('ck_user_keycloak_user_id_not_blank', 'c'),
        ('ck_user_status_valid', 'c'),
        ('pk_org_user', 'p'), ('fk_org_user_org_id_org', 'f'), ('fk_org_user_user_id_user', 'f'),
        ('fk_org_user_role_id_role', 'f'), ('ck_org_user_status_valid', 'c'),
        ('pk_settings', 'p'), ('fk_settings_org_id_org', 'f'), ('fk_settings_user_id_user', 'f'),
        ('ck_settings_one_owner', 'c')
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

-- Partial unique indexes (uniqueness where the column is set) are present, unique and valid.
WITH expected(indexname, predicate) AS (
    VALUES ('uq_org_external_id', '(external_id IS NOT NULL)'),
           ('uq_settings_org_id', '(org_id IS NOT NULL)'),
           ('uq_settings_user_id', '(user_id IS NOT NULL)')
)
SELECT 'unique index ' || e.indexname AS check_name,
       coalesce(i.indisunique AND i.indisvalid AND pg_get_expr(i.indpred, i.indrelid) = e.predicate, false) AS ok,
       CASE WHEN i.indexrelid IS NULL THEN 'missing'
            WHEN NOT i.indisvalid THEN 'INVALID'
            ELSE format('unique %s, where %s', i.indisunique, pg_get_expr(i.indpred, i.indrelid)) END AS detail
FROM expected e
LEFT JOIN pg_index i ON i.indexrelid = to_regclass(e.indexname)
ORDER BY e.indexname;

-- No invalid or unready index on these tables (a failed CREATE INDEX CONCURRENTLY leaves one).
SELECT 'no invalid index on the organizational tables' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all indexes valid'
            ELSE 'invalid: ' || string_agg(ic.relname, ', ') END AS detail
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid IN (to_regclass('role'), to_regclass('org'), to_regclass('"user"'),
                     to_regclass('org_user'), to_regclass('settings'))
  AND NOT (i.indisvalid AND i.indisready);

-- Every foreign key has an index whose leading columns are the key's columns.
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
  AND c.conrelid IN (to_regclass('org'), to_regclass('"user"'), to_regclass('org_user'),
                     to_regclass('settings'))
ORDER BY c.conname;

-- Timestamps in the organizational tables are timestamptz.
SELECT 'timestamps are timestamptz' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all timestamp columns carry a time zone'
            ELSE 'without time zone: ' || string_agg(table_name || '.' || column_name, ', ') END AS detail
FROM information_schema.columns
WHERE table_schema = current_schema()
  AND table_name IN ('role', 'org', 'user', 'org_user', 'settings')
  AND data_type = 'timestamp without time zone';
