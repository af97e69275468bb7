-- Step identity:<provider>, one batch: write what state.sql found different for the accounts of
-- the batch, and record in orgmig_identity_undo what each write replaced (the first time) and the
-- updated_at it left. In this order: users to create, links, memberships added or changed,
-- facility access, memberships removed, profile values, reports.
--
-- The undo records are written by a plain INSERT of the keys not recorded yet (NOT EXISTS) and an
-- UPDATE of those that are, not by INSERT ... ON CONFLICT: a speculative insertion writes a
-- second WAL record per row to confirm it (a sixth of the undo log's WAL). A key a concurrent
-- sync recorded in between raises a unique violation, and the batch is retried. Each NOT EXISTS
-- (or `recorded`) is a probe of the unique index per row (OFFSET 0 keeps it a subplan: as an
-- anti join, with the statistics of before the run, the planner read every undo record of the
-- table name once per batch and compared each row with all of them), each UPDATE a lookup of
-- the array of keys that probe found (not of every key written: on a first sync none).

-- name: create_users
-- An account that matches no app user, is not disabled and has a role in an org becomes a user
-- (matched_by 'created'); its keycloak_user_id is the account's subject: the account's id after
-- the provider's :subject_prefix (`okta|{id}` for Okta, the Keycloak or Auth0 user id as it is).
WITH new AS MATERIALIZED (
    SELECT b.row_id, nextval(CAST(:user_id_sequence AS regclass))::integer AS id, b.email, b.email_verified,
           b.app_status, b.first_name, b.last_name, b.site_admin, s.subject
    FROM batch_account b
    CROSS JOIN LATERAL (SELECT :subject_prefix || b.external_id AS subject) s
    WHERE b.problem = 'idp_user_without_app_user' AND b.app_status IS DISTINCT FROM 'disabled'
      AND EXISTS (SELECT 1 FROM batch_desired_membership d WHERE d.external_id = b.external_id AND d.role_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM "user" u WHERE u.keycloak_user_id = s.subject)
),
ins AS (
    INSERT INTO "user" (id, keycloak_user_id, status, email, email_verified, first_name, last_name, is_site_admin)
    SELECT id, subject, coalesce(app_status, 'active'), email, email_verified, first_name, last_name, site_admin
    FROM new
    RETURNING id
),
undo AS (
    INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, applied_updated_at, run_id)
    SELECT :provider, 'user', id::text, id, NULL, now(), :run_id FROM ins
    RETURNING 1
)
UPDATE batch_account b SET user_id = n.id, matched_by = 'created', new_link = true, problem = NULL, detail = NULL
FROM new n
WHERE b.row_id = n.row_id;

-- name: link
WITH ins AS (
    INSERT INTO user_identity (provider, external_id, user_id, matched_by)
    SELECT :provider, b.external_id, b.user_id, b.matched_by FROM batch_account b WHERE b.new_link
    RETURNING external_id, user_id
)
INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, run_id)
SELECT :provider, 'user_identity', :provider || '|' || i.external_id, i.user_id, NULL, :run_id FROM ins i
WHERE NOT EXISTS (SELECT 1 FROM orgmig_identity_undo x
                  WHERE x.table_name = 'user_identity' AND x.row_key = :provider || '|' || i.external_id OFFSET 0);

-- name: apply_members
WITH ins AS (
    INSERT INTO org_user (org_id, user_id, role_id, status, all_facilities)
    SELECT d.org_id, d.user_id, d.role_to, 'active', d.all_to FROM batch_membership_diff d WHERE d.kind = 'add'
    RETURNING org_id, user_id
),
upd AS (
    UPDATE org_user m SET role_id = d.role_to, all_facilities = d.all_to
    FROM batch_membership_diff d
    WHERE d.kind = 'change' AND NOT d.app_edit AND m.org_id = d.org_id AND m.user_id = d.user_id
    RETURNING m.org_id, m.user_id
),
written AS MATERIALIZED (
    SELECT w.*, EXISTS (SELECT 1 FROM orgmig_identity_undo x
                        WHERE x.table_name = 'org_user' AND x.row_key = w.row_key OFFSET 0) AS recorded
    FROM (SELECT i.org_id || '|' || i.user_id AS row_key, i.user_id, NULL::jsonb AS before FROM ins i
          UNION ALL
          SELECT u.org_id || '|' || u.user_id, u.user_id, d.before
          FROM upd u JOIN batch_membership_diff d ON d.org_id = u.org_id AND d.user_id = u.user_id) w
),
undo_new AS (
    INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, applied_updated_at, run_id)
    SELECT :provider, 'org_user', w.row_key, w.user_id, w.before, now(), :run_id FROM written w
    WHERE NOT w.recorded
    RETURNING 1
),
undo_again AS (
    UPDATE orgmig_identity_undo x SET applied_updated_at = now(), run_id = :run_id
    WHERE x.table_name = 'org_user' AND x.row_key = ANY (ARRAY(SELECT w.row_key FROM written w WHERE w.recorded))
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS added, (SELECT count(*) FROM upd) AS changed;

-- name: apply_facilities
WITH ins AS (
    INSERT INTO org_user_facility (org_id, user_id, facility_id)
    SELECT d.org_id, d.user_id, d.facility_id FROM batch_facility_diff d
    WHERE d.kind = 'add' AND EXISTS (SELECT 1 FROM org_user m WHERE m.org_id = d.org_id AND m.user_id = d.user_id)
    RETURNING org_id, user_id, facility_id
),
del AS (
    DELETE FROM org_user_facility f USING batch_facility_diff d
    WHERE d.kind = 'remove' AND NOT d.app_edit
      AND f.org_id = d.org_id AND f.user_id = d.user_id AND f.facility_id = d.facility_id
    RETURNING f.org_id, f.user_id, f.facility_id, f.created_at
),
undo AS (
    INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, run_id)
    SELECT :provider, 'org_user_facility', w.row_key, w.user_id, w.before, :run_id
    FROM (SELECT org_id || '|' || user_id || '|' || facility_id AS row_key, user_id, NULL::jsonb AS before
          FROM ins
          UNION ALL
          SELECT org_id || '|' || user_id || '|' || facility_id, user_id, jsonb_build_object('created_at', created_at)
          FROM del) w
    WHERE NOT EXISTS (SELECT 1 FROM orgmig_identity_undo x
                      WHERE x.table_name = 'org_user_facility' AND x.row_key = w.row_key OFFSET 0)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS added, (SELECT count(*) FROM del) AS removed;

-- name: remove_members
-- After their facility access: a membership the IdP no longer gives, unless the app edited it
-- (or added facility access to it) after the export started.
WITH del AS (
    DELETE FROM org_user m USING batch_membership_diff d
    WHERE d.kind = 'remove' AND NOT d.app_edit AND m.org_id = d.org_id AND m.user_id = d.user_id
      AND NOT EXISTS (SELECT 1 FROM batch_facility_diff f
                      WHERE f.user_id = d.user_id AND f.org_id = d.org_id AND f.app_edit)
    RETURNING m.org_id, m.user_id
)
INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, run_id)
SELECT :provider, 'org_user', x.org_id || '|' || x.user_id, x.user_id, d.before, :run_id
FROM del x JOIN batch_membership_diff d ON d.org_id = x.org_id AND d.user_id = x.user_id
WHERE NOT EXISTS (SELECT 1 FROM orgmig_identity_undo y
                  WHERE y.table_name = 'org_user' AND y.row_key = x.org_id || '|' || x.user_id OFFSET 0);

-- name: apply_users
WITH upd AS (
    UPDATE "user" u SET
        status = CASE WHEN 'status' = ANY (d.columns) THEN b.app_status ELSE u.status END,
        email = CASE WHEN 'email' = ANY (d.columns) THEN b.email ELSE u.email END,
        email_verified = CASE WHEN 'email_verified' = ANY (d.columns) THEN b.email_verified ELSE u.email_verified END,
        first_name = CASE WHEN 'first_name' = ANY (d.columns) THEN b.first_name ELSE u.first_name END,
        last_name = CASE WHEN 'last_name' = ANY (d.columns) THEN b.last_name ELSE u.last_name END,
        is_site_admin = CASE WHEN 'is_site_admin' = ANY (d.columns) THEN b.site_admin ELSE u.is_site_admin END
    FROM batch_user_diff d JOIN batch_account b ON b.user_id = d.user_id
    WHERE u.id = d.user_id AND NOT d.app_edit AND d.owner = :provider
    RETURNING u.id
),
written AS MATERIALIZED (
    SELECT u.id, EXISTS (SELECT 1 FROM orgmig_identity_undo x
                         WHERE x.table_name = 'user' AND x.row_key = u.id::text OFFSET 0) AS recorded
    FROM upd u
),
undo_new AS (
    INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, before, applied_updated_at, run_id)
    SELECT :provider, 'user', w.id::text, w.id, d.before, now(), :run_id
    FROM written w JOIN batch_user_diff d ON d.user_id = w.id
    WHERE NOT w.recorded
    RETURNING 1
),
undo_again AS (
    UPDATE orgmig_identity_undo x SET applied_updated_at = now(), run_id = :run_id
    WHERE x.table_name = 'user' AND x.row_key = ANY (ARRAY(SELECT w.id::text FROM written w WHERE w.recorded))
    RETURNING 1
)
SELECT count(*) FROM upd;

-- name: report
-- Every account the batch could not apply in full, with its reason; and every app user whose
-- edit, made after the export started, was kept over the IdP's value (app_edit_newer); and every
-- user whose values another provider owns where this one's differ (provider_conflict).
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
SELECT :step, 'idp_user', b.row_id, b.problem, false,
       coalesce(b.detail, '{}'::jsonb) || jsonb_build_object('external_id', b.external_id), :run_id
FROM batch_account b WHERE b.problem IS NOT NULL
UNION ALL
SELECT :step, 'idp_user', b.row_id, d.problem, b.user_id IS NOT NULL,
       jsonb_build_object('external_id', b.external_id, 'orgs', jsonb_agg(d.detail ORDER BY d.org_external_id)),
       :run_id
FROM batch_desired_membership d JOIN batch_account b ON b.external_id = d.external_id
WHERE d.problem IS NOT NULL
GROUP BY b.row_id, b.external_id, b.user_id, d.problem
UNION ALL
SELECT :step, 'user', e.user_id, 'app_edit_newer', true,
       jsonb_strip_nulls(jsonb_build_object(
           'user', (SELECT to_jsonb(d.columns) FROM batch_user_diff d
                    WHERE d.user_id = e.user_id AND d.app_edit AND d.owner = :provider),
           'memberships', (SELECT jsonb_agg(m.org_id ORDER BY m.org_id) FROM batch_membership_diff m
                           WHERE m.user_id = e.user_id AND m.app_edit),
           'facilities', (SELECT jsonb_agg(f.facility_id ORDER BY f.facility_id) FROM batch_facility_diff f
                          WHERE f.user_id = e.user_id AND f.app_edit))),
       :run_id
FROM (SELECT user_id FROM batch_user_diff WHERE app_edit AND owner = :provider
      UNION SELECT user_id FROM batch_membership_diff WHERE app_edit
      UNION SELECT user_id FROM batch_facility_diff WHERE app_edit) e
WHERE e.user_id > 0
UNION ALL
-- users whose values another provider owns (ORGMIG_PROVIDER_PRIORITY): this provider's differing
-- values are not applied
SELECT :step, 'user', d.user_id, 'provider_conflict', true,
       jsonb_build_object('owner', d.owner, 'columns', to_jsonb(d.columns)), :run_id
FROM batch_user_diff d WHERE d.owner <> :provider
ON CONFLICT (step, source_table, source_id, reason)
    DO UPDATE SET detail = EXCLUDED.detail, migrated = EXCLUDED.migrated, run_id = EXCLUDED.run_id;
