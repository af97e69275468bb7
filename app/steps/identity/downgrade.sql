-- Step identity:<provider>, downgrade: put back what its runs wrote, from orgmig_identity_undo.
-- A batch walks the undo rows of the users user_id :start..:end (by the index on user_id, which
-- the downgrade builds where revision 0009 dropped it); the orgs and facilities the step created
-- (no user) go last, in finish. A row is deleted by its key (table_name, row_key).

-- name: dependent_rows
-- The application's rows that hang on users the step created, users :start..:end: memberships
-- the step did not write and user-level settings. With :delete (allow_data_loss) a downgrade
-- batch deletes them; the guard counts them over every user with :delete false.
WITH created AS MATERIALIZED (
    SELECT user_id FROM orgmig_identity_undo
    WHERE provider = :provider AND table_name = 'user' AND before IS NULL AND user_id BETWEEN :start AND :end
),
members AS MATERIALIZED (
    SELECT m.org_id, m.user_id FROM org_user m
    WHERE m.user_id IN (SELECT user_id FROM created)
      AND NOT EXISTS (SELECT 1 FROM orgmig_identity_undo x
                      WHERE x.table_name = 'org_user' AND x.row_key = m.org_id || '|' || m.user_id)
),
user_settings_rows AS MATERIALIZED (
    SELECT s.id FROM settings s WHERE s.user_id IN (SELECT user_id FROM created)
),
del_settings AS (DELETE FROM settings s WHERE :delete AND s.id IN (SELECT id FROM user_settings_rows) RETURNING 1),
del_members AS (
    DELETE FROM org_user m WHERE :delete AND (m.org_id, m.user_id) IN (SELECT org_id, user_id FROM members)
    RETURNING 1
)
SELECT (SELECT count(*) FROM members) AS "org_user rows of created users",
       (SELECT count(*) FROM user_settings_rows) AS "settings rows of created users",
       (SELECT count(*) FROM del_settings) + (SELECT count(*) FROM del_members) AS written;

-- name: org_dependents
-- The application's rows in the orgs and facilities the step created: memberships it did not
-- write, settings of those orgs, users whose current org one is, facilities the application
-- added to them, facility access it did not grant. With :delete (allow_data_loss) they are
-- deleted (users detached), right before the created orgs and facilities go.
WITH orgs AS MATERIALIZED (
    SELECT CAST(row_key AS uuid) AS id FROM orgmig_identity_undo
    WHERE provider = :provider AND table_name = 'org' AND before IS NULL
),
facs AS MATERIALIZED (
    SELECT CAST(row_key AS uuid) AS id FROM orgmig_identity_undo
    WHERE provider = :provider AND table_name = 'facility' AND before IS NULL
),
members AS MATERIALIZED (
    SELECT m.org_id, m.user_id FROM org_user m
    WHERE m.org_id IN (SELECT id FROM orgs)
      AND NOT EXISTS (SELECT 1 FROM orgmig_identity_undo x
                      WHERE x.table_name = 'org_user' AND x.row_key = m.org_id || '|' || m.user_id)
),
org_settings AS MATERIALIZED (SELECT s.id FROM settings s WHERE s.org_id IN (SELECT id FROM orgs)),
current AS MATERIALIZED (SELECT u.id FROM "user" u WHERE u.current_org_id IN (SELECT id FROM orgs)),
app_facilities AS MATERIALIZED (
    SELECT f.id FROM facility f WHERE f.org_id IN (SELECT id FROM orgs) AND f.id NOT IN (SELECT id FROM facs)
),
access AS MATERIALIZED (
    SELECT f.org_id, f.user_id, f.facility_id FROM org_user_facility f
    WHERE (f.facility_id IN (SELECT id FROM facs) OR f.org_id IN (SELECT id FROM orgs))
      AND NOT EXISTS (SELECT 1 FROM orgmig_identity_undo x WHERE x.table_name = 'org_user_facility'
                      AND x.row_key = f.org_id || '|' || f.user_id || '|' || f.facility_id)
),
del_access AS (
    DELETE FROM org_user_facility f
    WHERE :delete AND (f.org_id, f.user_id, f.facility_id) IN (SELECT org_id, user_id, facility_id FROM access)
    RETURNING 1
),
del_members AS (
    DELETE FROM org_user m WHERE :delete AND (m.org_id, m.user_id) IN (SELECT org_id, user_id FROM members)
    RETURNING 1
),
del_settings AS (DELETE FROM settings s WHERE :delete AND s.id IN (SELECT id FROM org_settings) RETURNING 1),
detach AS (UPDATE "user" u SET current_org_id = NULL WHERE :delete AND u.id IN (SELECT id FROM current) RETURNING 1)
SELECT (SELECT count(*) FROM members) AS "org_user rows the application added to created orgs",
       (SELECT count(*) FROM org_settings) AS "settings rows of created orgs",
       (SELECT count(*) FROM current) AS "users whose current org is a created org",
       (SELECT count(*) FROM app_facilities) AS "facilities the application added to created orgs",
       (SELECT count(*) FROM access) AS "facility access the application granted in created orgs",
       (SELECT count(*) FROM del_access) + (SELECT count(*) FROM del_members) + (SELECT count(*) FROM del_settings)
     + (SELECT count(*) FROM detach) AS written;

-- name: app_changed
-- Rows the step's runs wrote that the application changed since (their updated_at is not the one
-- the step left): users and memberships it created, which a downgrade would delete with the
-- application's change in them (the guard refuses unless allow_data_loss), and those it changed or
-- removed, which the downgrade keeps as the application left them (kept_*). The casts go through
-- CASE: each table's row_key has its own shape.
WITH x AS MATERIALIZED (
    SELECT x.table_name, x.before, x.applied_updated_at,
           CASE WHEN x.table_name = 'user' THEN CAST(x.row_key AS integer) END AS user_id,
           CASE WHEN x.table_name = 'org_user' THEN CAST(split_part(x.row_key, '|', 1) AS uuid) END AS m_org,
           CASE WHEN x.table_name = 'org_user' THEN CAST(split_part(x.row_key, '|', 2) AS integer) END AS m_user
    FROM orgmig_identity_undo x
    WHERE x.provider = :provider AND x.table_name IN ('user', 'org_user')
),
changed AS MATERIALIZED (
    SELECT x.table_name, x.before IS NULL AS created FROM x JOIN "user" u ON u.id = x.user_id
    WHERE u.updated_at IS DISTINCT FROM x.applied_updated_at
    UNION ALL
    SELECT x.table_name, x.before IS NULL FROM x JOIN org_user m ON m.org_id = x.m_org AND m.user_id = x.m_user
    WHERE m.updated_at IS DISTINCT FROM x.applied_updated_at
)
SELECT count(*) FILTER (WHERE table_name = 'user' AND created)
           AS "users the sync created that the application changed since",
       count(*) FILTER (WHERE table_name = 'org_user' AND created)
           AS "memberships the sync created that the application changed since",
       count(*) FILTER (WHERE table_name = 'user' AND NOT created) AS kept_users,
       count(*) FILTER (WHERE table_name = 'org_user' AND NOT created) AS kept_members
FROM changed;

-- name: schema_rows
-- What revision 0006's tables and columns will hold of the application's once the downgrades of
-- every provider's runs are done (tbl, n): the rows no run created, the facility access and
-- memberships the runs removed (they come back), and the site-admin and all-facilities flags as
-- they will be (the value before the run where the row is as the run left it, the current one
-- where the application changed it since). Revision 0006 refuses on it before any revision's
-- downgrade changes anything, and again when its turn comes (then the undo log is empty and it
-- counts the tables as they are).
WITH undo AS MATERIALIZED (
    SELECT table_name, row_key, before, applied_updated_at FROM orgmig_identity_undo
)
SELECT 'facility' AS tbl, count(*) AS n FROM facility f
WHERE NOT EXISTS (SELECT 1 FROM undo x WHERE x.table_name = 'facility' AND x.before IS NULL AND x.row_key = f.id::text)
UNION ALL
SELECT 'org_user_facility', (
    SELECT count(*) FROM org_user_facility f
    WHERE NOT EXISTS (SELECT 1 FROM undo x WHERE x.table_name = 'org_user_facility' AND x.before IS NULL
                        AND x.row_key = f.org_id || '|' || f.user_id || '|' || f.facility_id)
) + (
    SELECT count(*) FROM undo x
    WHERE x.table_name = 'org_user_facility' AND x.before IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM org_user_facility f WHERE x.row_key = f.org_id || '|' || f.user_id || '|' || f.facility_id)
      AND (EXISTS (SELECT 1 FROM org_user m
                   WHERE m.org_id || '|' || m.user_id = split_part(x.row_key, '|', 1) || '|' || split_part(x.row_key, '|', 2)
                     AND NOT EXISTS (SELECT 1 FROM undo y WHERE y.table_name = 'org_user' AND y.before IS NULL
                                       AND y.row_key = m.org_id || '|' || m.user_id))
           OR EXISTS (SELECT 1 FROM undo y WHERE y.table_name = 'org_user' AND y.before IS NOT NULL
                        AND y.row_key = split_part(x.row_key, '|', 1) || '|' || split_part(x.row_key, '|', 2)))
)
UNION ALL
SELECT 'user_identity', count(*) FROM user_identity i
WHERE NOT EXISTS (SELECT 1 FROM undo x WHERE x.table_name = 'user_identity'
                    AND x.row_key = i.provider || '|' || i.external_id)
UNION ALL
SELECT '"user" WHERE is_site_admin', count(*) FROM "user" u
LEFT JOIN undo x ON x.table_name = 'user' AND x.row_key = u.id::text
WHERE CASE WHEN x.row_key IS NULL THEN u.is_site_admin
           WHEN x.before IS NULL THEN false
           WHEN u.updated_at IS NOT DISTINCT FROM x.applied_updated_at THEN CAST(x.before ->> 'is_site_admin' AS boolean)
           ELSE u.is_site_admin END
UNION ALL
SELECT 'org_user WHERE all_facilities', (
    SELECT count(*) FROM org_user m
    LEFT JOIN undo x ON x.table_name = 'org_user' AND x.row_key = m.org_id || '|' || m.user_id
    WHERE CASE WHEN x.row_key IS NULL THEN m.all_facilities
               WHEN x.before IS NULL THEN false
               WHEN m.updated_at IS NOT DISTINCT FROM x.applied_updated_at
                   THEN CAST(x.before ->> 'all_facilities' AS boolean)
               ELSE m.all_facilities END
) + (
    SELECT count(*) FROM undo x
    WHERE x.table_name = 'org_user' AND x.before IS NOT NULL AND CAST(x.before ->> 'all_facilities' AS boolean)
      AND NOT EXISTS (SELECT 1 FROM org_user m WHERE x.row_key = m.org_id || '|' || m.user_id)
);

-- name: undo_batch
WITH u AS MATERIALIZED (
    SELECT * FROM orgmig_identity_undo WHERE provider = :provider AND user_id BETWEEN :start AND :end
),
-- facility access the step granted
del_access AS (
    DELETE FROM org_user_facility f USING u
    WHERE u.table_name = 'org_user_facility' AND u.before IS NULL
      AND f.org_id = CAST(split_part(u.row_key, '|', 1) AS uuid)
      AND f.user_id = CAST(split_part(u.row_key, '|', 2) AS integer)
      AND f.facility_id = CAST(split_part(u.row_key, '|', 3) AS uuid)
    RETURNING 1
),
-- memberships it changed, back to what they were (updated_at included), where they are as it
-- left them: one the application changed since (or added again after the step removed it) is kept
restore_members AS (
    UPDATE org_user m SET role_id = CAST(u.before ->> 'role_id' AS integer), status = u.before ->> 'status',
           all_facilities = CAST(u.before ->> 'all_facilities' AS boolean),
           updated_at = CAST(u.before ->> 'updated_at' AS timestamptz)
    FROM u
    WHERE u.table_name = 'org_user' AND u.before IS NOT NULL
      AND m.org_id = CAST(split_part(u.row_key, '|', 1) AS uuid)
      AND m.user_id = CAST(split_part(u.row_key, '|', 2) AS integer)
      AND m.updated_at IS NOT DISTINCT FROM u.applied_updated_at
    RETURNING 1
),
-- memberships it created (their facility access goes with them)
del_members AS (
    DELETE FROM org_user m USING u
    WHERE u.table_name = 'org_user' AND u.before IS NULL
      AND m.org_id = CAST(split_part(u.row_key, '|', 1) AS uuid)
      AND m.user_id = CAST(split_part(u.row_key, '|', 2) AS integer)
    RETURNING 1
),
-- users it changed, back to what they were, where they are as it left them (a user the
-- application changed since is kept as the application left it)
restore_users AS (
    UPDATE "user" x SET status = u.before ->> 'status', email = u.before ->> 'email',
           email_verified = CAST(u.before ->> 'email_verified' AS boolean),
           first_name = u.before ->> 'first_name', last_name = u.before ->> 'last_name',
           is_site_admin = CAST(u.before ->> 'is_site_admin' AS boolean),
           updated_at = CAST(u.before ->> 'updated_at' AS timestamptz)
    FROM u
    WHERE u.table_name = 'user' AND u.before IS NOT NULL AND x.id = CAST(u.row_key AS integer)
      AND x.updated_at IS NOT DISTINCT FROM u.applied_updated_at
    RETURNING 1
),
-- links it made
del_links AS (
    DELETE FROM user_identity i USING u
    WHERE u.table_name = 'user_identity' AND i.provider = :provider
      AND i.provider || '|' || i.external_id = u.row_key AND i.user_id = u.user_id
    RETURNING 1
)
SELECT (SELECT count(DISTINCT user_id) FROM u) AS rows_read,
       (SELECT count(*) FROM del_access) + (SELECT count(*) FROM restore_members)
     + (SELECT count(*) FROM del_members) + (SELECT count(*) FROM restore_users)
     + (SELECT count(*) FROM del_links) AS written;

-- name: undo_batch_after
-- In a second statement, once the rows above are gone: memberships and facility access it
-- removed come back, users it created go, and the batch's undo rows are done.
WITH u AS MATERIALIZED (
    SELECT * FROM orgmig_identity_undo WHERE provider = :provider AND user_id BETWEEN :start AND :end
),
readd_members AS (
    INSERT INTO org_user (org_id, user_id, role_id, status, all_facilities, created_at, updated_at)
    SELECT CAST(split_part(u.row_key, '|', 1) AS uuid), CAST(split_part(u.row_key, '|', 2) AS integer),
           CAST(u.before ->> 'role_id' AS integer), u.before ->> 'status',
           CAST(u.before ->> 'all_facilities' AS boolean), CAST(u.before ->> 'created_at' AS timestamptz),
           CAST(u.before ->> 'updated_at' AS timestamptz)
    FROM u
    WHERE u.table_name = 'org_user' AND u.before IS NOT NULL
    ON CONFLICT (org_id, user_id) DO NOTHING
    RETURNING 1
),
del_users AS (
    DELETE FROM "user" x USING u
    WHERE u.table_name = 'user' AND u.before IS NULL AND x.id = CAST(u.row_key AS integer)
    RETURNING 1
),
done AS (DELETE FROM orgmig_identity_undo x USING u
         WHERE x.table_name = u.table_name AND x.row_key = u.row_key AND u.table_name <> 'org_user_facility'
         RETURNING 1)
SELECT (SELECT count(*) FROM readd_members) + (SELECT count(*) FROM del_users) AS written;

-- name: undo_access_after
-- Facility access it removed, back where the membership is back; then those undo rows are done.
WITH u AS MATERIALIZED (
    SELECT * FROM orgmig_identity_undo
    WHERE provider = :provider AND user_id BETWEEN :start AND :end AND table_name = 'org_user_facility'
),
readd AS (
    INSERT INTO org_user_facility (org_id, user_id, facility_id, created_at)
    SELECT CAST(split_part(u.row_key, '|', 1) AS uuid), CAST(split_part(u.row_key, '|', 2) AS integer),
           CAST(split_part(u.row_key, '|', 3) AS uuid), CAST(u.before ->> 'created_at' AS timestamptz)
    FROM u
    WHERE u.before IS NOT NULL
      AND EXISTS (SELECT 1 FROM org_user m WHERE m.org_id = CAST(split_part(u.row_key, '|', 1) AS uuid)
                                          AND m.user_id = CAST(split_part(u.row_key, '|', 2) AS integer))
    ON CONFLICT DO NOTHING
    RETURNING 1
),
done AS (DELETE FROM orgmig_identity_undo x USING u WHERE x.table_name = u.table_name AND x.row_key = u.row_key
         RETURNING 1)
SELECT (SELECT count(*) FROM readd) AS written;

-- name: drop_created
-- Last: the facilities and orgs the step created, the group meanings and reports (its plan's
-- kept state, and below revision 0009 its work list, are forgotten by Step.finish).
WITH fac AS (
    DELETE FROM facility f USING orgmig_identity_undo u
    WHERE u.provider = :provider AND u.table_name = 'facility' AND u.before IS NULL AND f.id = CAST(u.row_key AS uuid)
    RETURNING 1
),
orgs AS (
    DELETE FROM org o USING orgmig_identity_undo u
    WHERE u.provider = :provider AND u.table_name = 'org' AND u.before IS NULL AND o.id = CAST(u.row_key AS uuid)
      -- an org holding a facility the application added stays (allow_data_loss never deletes
      -- the application's facilities)
      AND NOT EXISTS (SELECT 1 FROM facility f WHERE f.org_id = o.id
                      AND f.id NOT IN (SELECT CAST(row_key AS uuid) FROM orgmig_identity_undo
                                       WHERE provider = :provider AND table_name = 'facility'))
    RETURNING 1
),
groups AS (DELETE FROM orgmig_identity_group WHERE provider = :provider RETURNING 1),
undo AS (DELETE FROM orgmig_identity_undo WHERE provider = :provider AND user_id IS NULL RETURNING 1)
DELETE FROM orgmig_report WHERE step = :step;

