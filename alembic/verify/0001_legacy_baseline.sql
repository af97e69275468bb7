-- Verification for revision 0001 (legacy baseline). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0001_legacy_baseline.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

-- user_settings has the contract's columns, each of the contract's type or of one the data
-- revision converts by type (text for character varying, jsonb for json, timestamptz for the
-- naive timestamp). Other differences (nullability, columns the contract does not know) are
-- named in the detail without failing the check: revision 0004 reports unknown columns.
WITH expected(column_name, data_type, is_nullable) AS (
    VALUES
        ('id', 'integer', 'NO'),
        ('keycloak_user_id', 'character varying', 'YES'),
        ('language', 'character varying', 'YES'),
        ('agent', 'character varying', 'YES'),
        ('max_iterations', 'integer', 'YES'),
        ('security_analyzer', 'character varying', 'YES'),
        ('confirmation_mode', 'boolean', 'YES'),
        ('llm_model', 'character varying', 'YES'),
        ('llm_api_key', 'character varying', 'YES'),
        ('llm_api_key_for_byor', 'character varying', 'YES'),
        ('llm_base_url', 'character varying', 'YES'),
        ('remote_runtime_resource_factor', 'integer', 'YES'),
        ('enable_default_condenser', 'boolean', 'NO'),
        ('condenser_max_size', 'integer', 'YES'),
        ('user_consents_to_analytics', 'boolean', 'YES'),
        ('billing_margin', 'double precision', 'YES'),
        ('enable_sound_notifications', 'boolean', 'YES'),
        ('enable_proactive_conversation_starters', 'boolean', 'NO'),
        ('sandbox_base_container_image', 'character varying', 'YES'),
        ('sandbox_runtime_container_image', 'character varying', 'YES'),
        ('user_version', 'integer', 'NO'),
        ('accepted_tos', 'timestamp without time zone', 'YES'),
        ('mcp_config', 'json', 'YES'),
        ('search_api_key', 'character varying', 'YES'),
        ('sandbox_api_key', 'character varying', 'YES'),
        ('max_budget_per_task', 'double precision', 'YES'),
        ('enable_solvability_analysis', 'boolean', 'YES'),
        ('email', 'character varying', 'YES'),
        ('email_verified', 'boolean', 'YES'),
        ('git_user_name', 'character varying', 'YES'),
        ('git_user_email', 'character varying', 'YES')
), convertible(declared, found) AS (
    VALUES ('character varying', 'text'), ('json', 'jsonb'),
           ('timestamp without time zone', 'timestamp with time zone')
), actual AS (
    SELECT column_name::text, data_type::text, is_nullable::text
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'user_settings'
), diff AS (
    SELECT coalesce(e.column_name, a.column_name) AS column_name,
           a.column_name IS NULL
           OR (e.column_name IS NOT NULL AND a.data_type <> e.data_type
               AND NOT EXISTS (SELECT 1 FROM convertible c
                               WHERE c.declared = e.data_type AND c.found = a.data_type)) AS fatal,
           CASE WHEN a.column_name IS NULL THEN 'missing'
                WHEN e.column_name IS NULL THEN format('is not in the contract (%s)', a.data_type)
                ELSE format('is %s %s, expected %s %s', a.data_type,
                            CASE a.is_nullable WHEN 'NO' THEN 'NOT NULL' ELSE 'NULL' END,
                            e.data_type,
                            CASE e.is_nullable WHEN 'NO' THEN 'NOT NULL' ELSE 'NULL' END)
           END AS problem
    FROM expected e FULL JOIN actual a USING (column_name)
    WHERE a.column_name IS NULL OR e.column_name IS NULL
       OR a.data_type <> e.data_type OR a.is_nullable <> e.is_nullable
)
SELECT 'user_settings columns match the legacy contract' AS check_name,
       NOT coalesce(bool_or(fatal), false) AS ok,
       CASE WHEN count(*) = 0 THEN '31 columns as expected'
            ELSE string_agg(column_name || ' ' || problem, '; ' ORDER BY column_name) END AS detail
FROM diff;

-- Primary key on id and the keycloak_user_id index are present and valid.
SELECT 'user_settings primary key on id' AS check_name,
       count(*) = 1 AS ok,
       coalesce(string_agg(conname, ', '), 'no primary key') AS detail
FROM pg_constraint
WHERE conrelid = to_regclass('user_settings') AND contype = 'p'
  AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                      WHERE attrelid = to_regclass('user_settings') AND attname = 'id')];

SELECT 'user_settings keycloak_user_id index is valid' AS check_name,
       bool_or(i.indisvalid AND i.indisready) IS TRUE AS ok,
       coalesce(string_agg(c.relname || CASE WHEN i.indisvalid THEN ' valid' ELSE ' INVALID' END, ', '),
                'no index on keycloak_user_id') AS detail
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass('user_settings')
  AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                     WHERE attrelid = to_regclass('user_settings') AND attname = 'keycloak_user_id');

SELECT 'orgmig_baseline records whether 0001 created user_settings' AS check_name,
       count(*) = 1 AS ok,
       CASE WHEN count(*) = 1
            THEN CASE WHEN bool_and(created_user_settings) THEN 'user_settings created by 0001'
                      ELSE 'user_settings existed before 0001' END
            ELSE format('%s rows in orgmig_baseline', count(*)) END AS detail
FROM orgmig_baseline;
