-- Verification for revision 0005 (identity-provider snapshot). Read-only; safe to run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0005_idp_snapshot.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.

SELECT 'table ' || t || ' exists' AS check_name,
       to_regclass(t) IS NOT NULL AS ok,
       CASE WHEN to_regclass(t) IS NULL THEN 'missing' ELSE 'present' END AS detail
FROM unnest(ARRAY['idp_export_run', 'idp_export_cursor', 'idp_user', 'idp_group', 'idp_membership']) AS t;

WITH expected(conname, contype) AS (
    VALUES
        ('pk_idp_export_run', 'p'), ('ck_idp_export_run_provider_valid', 'c'),
        ('ck_idp_export_run_mode_valid', 'c'), ('ck_idp_export_run_status_valid', 'c'),
        ('ck_idp_export_run_since_matches_mode', 'c'),
        ('pk_idp_export_cursor', 'p'), ('fk_idp_export_cursor_run_id_idp_export_run', 'f'),
        ('pk_idp_user', 'p'), ('ck_idp_user_provider_valid', 'c'),
        ('fk_idp_user_first_seen_run_id_idp_export_run', 'f'),
        ('fk_idp_user_last_seen_run_id_idp_export_run', 'f'),
        ('pk_idp_group', 'p'), ('ck_idp_group_provider_valid', 'c'), ('ck_idp_group_kind_valid', 'c'),
        ('fk_idp_group_first_seen_run_id_idp_export_run', 'f'),
        ('fk_idp_group_last_seen_run_id_idp_export_run', 'f'),
        ('pk_idp_membership', 'p'), ('fk_idp_membership_provider_idp_group', 'f'),
        ('fk_idp_membership_first_seen_run_id_idp_export_run', 'f'),
        ('fk_idp_membership_last_seen_run_id_idp_export_run', 'f')
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

-- One unfinished export per provider: the partial unique index that enforces it.
SELECT 'unique index uq_idp_export_run_active is valid' AS check_name,
       coalesce(bool_and(i.indisvalid AND i.indisunique AND i.indpred IS NOT NULL), false) AS ok,
       CASE WHEN count(*) = 0 THEN 'missing'
            WHEN bool_and(i.indisvalid) THEN 'present and valid' ELSE 'INVALID' END AS detail
FROM pg_index i
WHERE i.indexrelid = to_regclass('uq_idp_export_run_active');

SELECT 'no invalid index on the snapshot tables' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all indexes valid'
            ELSE 'invalid: ' || string_agg(ic.relname, ', ') END AS detail
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid IN (to_regclass('idp_export_run'), to_regclass('idp_export_cursor'),
                     to_regclass('idp_user'), to_regclass('idp_group'), to_regclass('idp_membership'))
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
  AND c.conrelid IN (to_regclass('idp_export_cursor'), to_regclass('idp_user'),
                     to_regclass('idp_group'), to_regclass('idp_membership'))
ORDER BY c.conname;

-- Providers whose latest export finished: their snapshot is complete, so every membership must
-- point at a user and a group of the same provider.
WITH settled AS (
    SELECT DISTINCT ON (provider) provider, status
    FROM idp_export_run
    WHERE status <> 'abandoned'
    ORDER BY provider, id DESC
)
SELECT 'memberships of ' || s.provider || ' point at exported users' AS check_name,
       count(m.*) = 0 AS ok,
       CASE WHEN count(m.*) = 0 THEN 'every membership has its user'
            ELSE count(m.*) || ' memberships name a missing user, e.g. '
                 || min(m.kind || ' ' || m.group_external_id || ' -> ' || m.user_external_id) END AS detail
FROM settled s
LEFT JOIN idp_membership m
       ON m.provider = s.provider
      AND NOT EXISTS (SELECT 1 FROM idp_user u
                      WHERE u.provider = m.provider AND u.external_id = m.user_external_id)
WHERE s.status = 'finished'
GROUP BY s.provider
ORDER BY s.provider;

SELECT 'memberships point at exported groups' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every membership has its group'
            ELSE count(*) || ' memberships name a missing group' END AS detail
FROM idp_membership m
WHERE NOT EXISTS (SELECT 1 FROM idp_group g
                  WHERE g.provider = m.provider AND g.kind = m.kind AND g.external_id = m.group_external_id);

-- A finished export recorded the snapshot's size when it finished; while it is still the latest
-- run of its provider, the tables must hold exactly that many rows.
WITH latest AS (
    SELECT DISTINCT ON (provider) *
    FROM idp_export_run
    WHERE status <> 'abandoned'
    ORDER BY provider, id DESC
)
SELECT 'export run ' || r.id || ' (' || r.provider || ') counts match the snapshot' AS check_name,
       r.users_count = u.n AND r.groups_count = g.n AND r.memberships_count = m.n AS ok,
       format('users %s/%s, groups %s/%s, memberships %s/%s (recorded/present)',
              r.users_count, u.n, r.groups_count, g.n, r.memberships_count, m.n) AS detail
FROM latest r
CROSS JOIN LATERAL (SELECT count(*) AS n FROM idp_user WHERE provider = r.provider) u
CROSS JOIN LATERAL (SELECT count(*) AS n FROM idp_group WHERE provider = r.provider) g
CROSS JOIN LATERAL (SELECT count(*) AS n FROM idp_membership WHERE provider = r.provider) m
WHERE r.status = 'finished'
ORDER BY r.provider;

SELECT 'finished exports are complete' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every finished export has finished_at, its counts and only finished streams'
            ELSE 'incomplete: export runs ' || string_agg(r.id::text, ', ' ORDER BY r.id) END AS detail
FROM idp_export_run r
WHERE r.status = 'finished'
  AND (r.finished_at IS NULL OR r.users_count IS NULL OR r.groups_count IS NULL
       OR r.memberships_count IS NULL
       OR EXISTS (SELECT 1 FROM idp_export_cursor c WHERE c.run_id = r.id AND NOT c.done));

SELECT 'snapshot rows name an export run of their provider' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every row was last seen by a run of its own provider'
            ELSE count(*) || ' rows tagged with another provider''s run' END AS detail
FROM (
    SELECT provider, last_seen_run_id FROM idp_user
    UNION ALL SELECT provider, last_seen_run_id FROM idp_group
    UNION ALL SELECT provider, last_seen_run_id FROM idp_membership
) t
JOIN idp_export_run r ON r.id = t.last_seen_run_id
WHERE r.provider <> t.provider;
