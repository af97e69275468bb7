-- Step identity:<provider>, after its last batch, and its summary.

-- name: report_app_users
-- App users with no account at this provider (never linked, or linked to an account the
-- snapshot no longer has: their rows are left as they are, never removed on the IdP's silence).
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
SELECT :step, 'user', u.id, 'app_user_without_idp_account', i.user_id IS NOT NULL,
       jsonb_strip_nulls(jsonb_build_object('provider', :provider, 'linked_account_gone', i.external_id)),
       :run_id
FROM "user" u
LEFT JOIN user_identity i ON i.provider = :provider AND i.user_id = u.id
WHERE i.user_id IS NULL
   OR NOT EXISTS (SELECT 1 FROM idp_user x WHERE x.provider = :provider AND x.external_id = i.external_id)
ON CONFLICT (step, source_table, source_id, reason) DO UPDATE SET detail = EXCLUDED.detail, run_id = EXCLUDED.run_id;

-- name: forget_plan
DELETE FROM orgmig_identity_todo WHERE provider = :provider;

-- name: rows_written
-- What the run's batches wrote (every run of this process or of one it resumed).
SELECT coalesce(sum(rows_written), 0) FROM orgmig_batch WHERE run_id = :run_id;

-- name: summary
SELECT (SELECT count(*) FROM idp_user WHERE provider = :provider) AS accounts,
       (SELECT count(*) FROM user_identity WHERE provider = :provider) AS linked,
       (SELECT count(*) FROM orgmig_identity_undo
         WHERE provider = :provider AND table_name = 'user_identity' AND run_id = :run_id) AS links_created,
       (SELECT count(*) FROM orgmig_identity_undo
         WHERE provider = :provider AND table_name = 'user' AND before IS NULL AND run_id = :run_id) AS users_created,
       (SELECT count(*) FROM orgmig_identity_undo
         WHERE provider = :provider AND table_name = 'org_user' AND run_id = :run_id) AS memberships_written,
       (SELECT count(*) FROM orgmig_identity_undo
         WHERE provider = :provider AND table_name = 'user' AND before IS NOT NULL AND run_id = :run_id)
           AS users_changed;
