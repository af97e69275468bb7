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

-- name: summary
-- One pass over the run's undo rows (the log has no index on run_id: four counts were four scans).
-- The rows this run wrote are those carrying its run_id, whichever provider's run first wrote the
-- row (a row's undo entry stays that first provider's: a user another provider linked or created
-- and this one changed counts here). A user this run created is a row it inserted: before NULL
-- and still the updated_at of its creation; one created by an earlier run and changed by this
-- one counts as changed.
SELECT (SELECT count(*) FROM idp_user WHERE provider = :provider) AS accounts,
       (SELECT count(*) FROM user_identity WHERE provider = :provider) AS linked,
       u.links_created, u.users_created, u.memberships_written, u.users_changed
FROM (SELECT count(*) FILTER (WHERE table_name = 'user_identity') AS links_created,
             count(*) FILTER (WHERE table_name = 'user' AND created) AS users_created,
             count(*) FILTER (WHERE table_name = 'org_user') AS memberships_written,
             count(*) FILTER (WHERE table_name = 'user' AND NOT created) AS users_changed
      FROM orgmig_identity_undo
      CROSS JOIN LATERAL (SELECT before IS NULL AND provider = :provider
                                 AND applied_updated_at IS NOT DISTINCT FROM created_at AS created) c
      WHERE run_id = :run_id) u;
