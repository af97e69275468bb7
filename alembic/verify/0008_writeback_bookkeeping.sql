-- Verification for revision 0008 (write-back bookkeeping). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0008_writeback_bookkeeping.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

SELECT 'table orgmig_writeback exists' AS check_name,
       to_regclass('orgmig_writeback') IS NOT NULL AS ok,
       CASE WHEN to_regclass('orgmig_writeback') IS NULL THEN 'missing' ELSE 'present' END AS detail;

-- Its columns, with their types and NOT NULL.
WITH expected(col, type, not_null) AS (
    VALUES ('provider', 'character varying', true), ('external_id', 'character varying', true),
           ('user_id', 'integer', true), ('attribute', 'character varying', true),
           ('value', 'character varying', true), ('status', 'character varying', true),
           ('http_status', 'integer', false), ('error', 'text', false),
           ('updated_at', 'timestamp with time zone', true)
)
SELECT 'column orgmig_writeback.' || e.col AS check_name,
       coalesce(format_type(a.atttypid, a.atttypmod) = e.type AND a.attnotnull = e.not_null, false) AS ok,
       coalesce(format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE ' null' END,
                'missing') AS detail
FROM expected e
LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('orgmig_writeback') AND a.attname = e.col
                         AND NOT a.attisdropped;

-- Every constraint is present and validated.
WITH expected(conname, contype) AS (
    VALUES ('pk_orgmig_writeback', 'p'), ('ck_orgmig_writeback_provider_valid', 'c'),
           ('ck_orgmig_writeback_status_valid', 'c'), ('ck_orgmig_writeback_error_when_failed', 'c')
)
SELECT 'constraint ' || e.conname AS check_name,
       c.oid IS NOT NULL AND c.convalidated AND c.contype::text = e.contype AS ok,
       CASE WHEN c.oid IS NULL THEN 'missing'
            WHEN NOT c.convalidated THEN 'present but NOT VALIDATED'
            WHEN c.contype::text <> e.contype THEN format('wrong kind %s', c.contype)
            ELSE 'present and validated' END AS detail
FROM expected e
LEFT JOIN pg_constraint c ON c.conname = e.conname AND c.connamespace = current_schema()::regnamespace
ORDER BY e.conname;

-- Every account recorded as set holds the id of the app user it is linked to now (a link that
-- moved to another user since is set again by the next `orgmig writeback`: listed, not an error).
SELECT 'accounts set by orgmig writeback still hold their link''s user id' AS check_name,
       true AS ok,
       format('%s of %s set accounts are now linked to another user (or unlinked): the next orgmig writeback sets them',
              count(*) FILTER (WHERE i.user_id IS DISTINCT FROM w.user_id), count(*)) AS detail
FROM orgmig_writeback w
LEFT JOIN user_identity i ON i.provider = w.provider AND i.external_id = w.external_id
WHERE w.status IN ('written', 'present');

-- A failed account names the HTTP status or the reason; the detail counts them per provider.
SELECT 'failed write-backs of ' || p AS check_name,
       true AS ok,
       format('%s failed (see orgmig_report step writeback:%s; the next orgmig writeback tries them again)',
              (SELECT count(*) FROM orgmig_writeback w WHERE w.provider = p AND w.status = 'failed'), p) AS detail
FROM unnest(ARRAY['okta', 'keycloak', 'auth0']) AS p;
