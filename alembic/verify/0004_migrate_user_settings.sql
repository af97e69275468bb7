-- Verification for revision 0004 (user_settings rows into the org structure). Read-only;
-- safe to run at any time, also while the migration runs (then parity reports rows not yet done):
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0004_migrate_user_settings.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.
-- Step name: user_settings_to_org. Links: orgmig_user_settings_link. Reports: orgmig_report.
--
-- Timestamps are compared as instants: a naive legacy timestamp holds UTC, a timestamptz legacy
-- column its own instant, whatever the server's or the session's time zone.
SET TimeZone = 'UTC';

-- The step's run finished.
SELECT 'user_settings_to_org upgrade finished' AS check_name,
       coalesce(bool_or(status = 'finished' AND direction = 'upgrade'), false)
         AND NOT coalesce(bool_or(status NOT IN ('finished', 'cancelled')), false) AS ok,
       coalesce(string_agg(format('run %s %s %s: %s/%s rows', id, direction, status, rows_done, total_rows),
                           '; ' ORDER BY id DESC), 'no run recorded') AS detail
FROM (SELECT * FROM orgmig_run WHERE step = 'user_settings_to_org' ORDER BY id DESC LIMIT 3) r;

-- Every legacy row is either migrated (linked) or reported as not migrated, never both, never neither.
WITH legacy AS (SELECT id FROM user_settings),
     linked AS (SELECT user_settings_id AS id FROM orgmig_user_settings_link),
     skipped AS (SELECT DISTINCT source_id::integer AS id FROM orgmig_report
                 WHERE step = 'user_settings_to_org' AND source_table = 'user_settings' AND NOT migrated)
SELECT 'every legacy row migrated or reported' AS check_name,
       (SELECT count(*) FROM legacy) = (SELECT count(*) FROM linked) + (SELECT count(*) FROM skipped)
         AND NOT EXISTS (SELECT id FROM legacy EXCEPT (SELECT id FROM linked UNION ALL SELECT id FROM skipped))
         AND NOT EXISTS (SELECT id FROM linked INTERSECT SELECT id FROM skipped) AS ok,
       format('legacy %s = migrated %s + reported %s; neither: %s; both: %s; link to a missing legacy row: %s',
              (SELECT count(*) FROM legacy), (SELECT count(*) FROM linked), (SELECT count(*) FROM skipped),
              (SELECT count(*) FROM (SELECT id FROM legacy EXCEPT (SELECT id FROM linked UNION ALL SELECT id FROM skipped)) x),
              (SELECT count(*) FROM (SELECT id FROM linked INTERSECT SELECT id FROM skipped) x),
              (SELECT count(*) FROM (SELECT id FROM linked EXCEPT SELECT id FROM legacy) x)) AS detail;

-- Reported rows carry the right reason: ids that are NULL/empty/blank, or lose to a higher id.
SELECT 'reported rows are exactly the unmigratable ones' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every report matches its legacy row'
            ELSE format('%s reports disagree with the legacy rows (first ids: %s)', count(*),
                        (array_agg(source_id ORDER BY source_id))[1:10]::text) END AS detail
FROM orgmig_report r
JOIN user_settings us ON us.id = r.source_id
WHERE r.step = 'user_settings_to_org' AND NOT r.migrated AND r.source_table = 'user_settings'
  AND NOT CASE r.reason
        WHEN 'missing_keycloak_user_id' THEN us.keycloak_user_id IS NULL OR us.keycloak_user_id !~ '[^[:space:]]'
        WHEN 'duplicate_keycloak_user_id' THEN
             us.keycloak_user_id ~ '[^[:space:]]'
             AND (r.detail ->> 'winner_id')::integer = (SELECT max(w.id + 0) FROM user_settings w
                                                         WHERE w.keycloak_user_id = us.keycloak_user_id)
             AND (r.detail ->> 'winner_id')::integer <> us.id
        ELSE false END;

-- The winner each duplicate names was migrated.
SELECT 'each duplicate names a migrated winner' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all winners migrated'
            ELSE format('%s duplicates name a winner that is not migrated', count(*)) END AS detail
FROM orgmig_report r
WHERE r.step = 'user_settings_to_org' AND r.reason = 'duplicate_keycloak_user_id'
  AND NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l
                  WHERE l.user_settings_id = (r.detail ->> 'winner_id')::integer);

-- Links point at existing rows: the user with that keycloak id, the personal org, the admin membership.
SELECT 'each migrated row has its user, personal org and active admin membership' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all present'
            ELSE format('%s migrated rows incomplete (first legacy ids: %s)', count(*),
                        (array_agg(l.user_settings_id ORDER BY l.user_settings_id))[1:10]::text) END AS detail
FROM orgmig_user_settings_link l
JOIN user_settings us ON us.id = l.user_settings_id
LEFT JOIN "user" u ON u.id = l.user_id AND u.keycloak_user_id = us.keycloak_user_id
LEFT JOIN org o ON o.id = l.org_id AND o.name = 'user_' || us.id || '_org'
LEFT JOIN org_user m ON m.org_id = l.org_id AND m.user_id = l.user_id
LEFT JOIN role r ON r.id = m.role_id
WHERE u.id IS NULL OR o.id IS NULL OR m.org_id IS NULL
   OR ((r.name IS DISTINCT FROM 'admin' OR m.status <> 'active')
       AND NOT EXISTS (SELECT 1 FROM orgmig_report x WHERE x.step = 'user_settings_to_org'
                       AND x.source_id = l.user_settings_id AND x.reason = 'membership_differs'));

-- No orphans (the seed guide's query, plus settings and users pointing nowhere).
SELECT 'no orphaned org_user rows' AS check_name, count(*) = 0 AS ok, format('%s orphans', count(*)) AS detail
FROM org_user ou LEFT JOIN "user" u ON ou.user_id = u.id LEFT JOIN org o ON ou.org_id = o.id
WHERE u.id IS NULL OR o.id IS NULL;

SELECT 'every personal org has exactly one admin' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'one admin each'
            ELSE format('%s personal orgs without exactly one admin', count(*)) END AS detail
FROM (
    SELECT l.org_id
    FROM orgmig_user_settings_link l
    LEFT JOIN org_user m ON m.org_id = l.org_id
         AND m.role_id = (SELECT id FROM role WHERE name = 'admin')
    GROUP BY l.org_id
    HAVING count(m.user_id) <> 1
) x;

SELECT 'every personal org has its settings row' AS check_name,
       count(*) = 0 AS ok,
       format('%s personal orgs without settings', count(*)) AS detail
FROM orgmig_user_settings_link l
WHERE NOT EXISTS (SELECT 1 FROM settings s WHERE s.org_id = l.org_id);

-- Per-column parity, as a set difference over every migrated row (not a sample). Rows whose
-- settings the application had already written are reported (settings_differ) and skipped here.
WITH legacy AS (
    SELECT l.user_settings_id,
           us.language,
           us.agent,
           us.max_iterations,
           us.security_analyzer,
           us.confirmation_mode,
           us.llm_model,
           us.llm_api_key,
           us.llm_api_key_for_byor,
           us.llm_base_url,
           us.remote_runtime_resource_factor,
           us.enable_default_condenser,
           us.condenser_max_size,
           us.user_consents_to_analytics,
           us.billing_margin,
           us.enable_sound_notifications,
           us.enable_proactive_conversation_starters,
           us.sandbox_base_container_image,
           us.sandbox_runtime_container_image,
           us.user_version,
           CAST(us.accepted_tos AS timestamptz),
           us.mcp_config::text,
           us.search_api_key,
           us.sandbox_api_key,
           us.max_budget_per_task,
           us.enable_solvability_analysis,
           us.email,
           us.email_verified,
           us.git_user_name,
           us.git_user_email
    FROM orgmig_user_settings_link l JOIN user_settings us ON us.id = l.user_settings_id
    WHERE NOT EXISTS (SELECT 1 FROM orgmig_report x WHERE x.step = 'user_settings_to_org'
                      AND x.source_id = l.user_settings_id AND x.reason IN ('settings_differ', 'changed_during_upgrade'))
), target AS (
    SELECT l.user_settings_id,
           s.language,
           s.agent,
           s.max_iterations,
           s.security_analyzer,
           s.confirmation_mode,
           s.llm_model,
           s.llm_api_key,
           s.llm_api_key_for_byor,
           s.llm_base_url,
           s.remote_runtime_resource_factor,
           s.enable_default_condenser,
           s.condenser_max_size,
           s.user_consents_to_analytics,
           s.billing_margin,
           s.enable_sound_notifications,
           s.enable_proactive_conversation_starters,
           s.sandbox_base_container_image,
           s.sandbox_runtime_container_image,
           s.user_version,
           s.accepted_tos,
           s.mcp_config::text,
           s.search_api_key,
           s.sandbox_api_key,
           s.max_budget_per_task,
           s.enable_solvability_analysis,
           s.email,
           s.email_verified,
           s.git_user_name,
           s.git_user_email
    FROM orgmig_user_settings_link l JOIN settings s ON s.org_id = l.org_id
    WHERE NOT EXISTS (SELECT 1 FROM orgmig_report x WHERE x.step = 'user_settings_to_org'
                      AND x.source_id = l.user_settings_id AND x.reason IN ('settings_differ', 'changed_during_upgrade'))
), diff AS (
    (SELECT * FROM legacy EXCEPT ALL SELECT * FROM target)
    UNION ALL
    (SELECT * FROM target EXCEPT ALL SELECT * FROM legacy)
)
SELECT 'settings equal their legacy row, column for column' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN format('%s rows compared', (SELECT count(*) FROM legacy))
            ELSE format('%s rows differ (first legacy ids: %s)', count(*),
                        (array_agg(DISTINCT user_settings_id))[1:10]::text) END AS detail
FROM diff;

-- A user's email and email_verified belong to this revision until the row is updated (by the
-- identity sync of revision 0007, or by the application): then they are compared no more, the
-- rest always (the identity sync never writes them).
WITH legacy AS (
    SELECT l.user_settings_id, us.keycloak_user_id,
           CASE WHEN u.updated_at = u.created_at THEN us.email END AS email,
           CASE WHEN u.updated_at = u.created_at THEN us.email_verified END AS email_verified,
           CAST(us.accepted_tos AS timestamptz) AS accepted_tos, us.enable_sound_notifications
    FROM orgmig_user_settings_link l JOIN user_settings us ON us.id = l.user_settings_id
    JOIN "user" u ON u.id = l.user_id
    WHERE l.created_user
), target AS (
    SELECT l.user_settings_id, u.keycloak_user_id,
           CASE WHEN u.updated_at = u.created_at THEN u.email END AS email,
           CASE WHEN u.updated_at = u.created_at THEN u.email_verified END AS email_verified,
           u.accepted_tos, u.enable_sound_notifications
    FROM orgmig_user_settings_link l JOIN "user" u ON u.id = l.user_id
    WHERE l.created_user
), diff AS (
    (SELECT * FROM legacy EXCEPT ALL SELECT * FROM target)
    UNION ALL
    (SELECT * FROM target EXCEPT ALL SELECT * FROM legacy)
)
SELECT 'created users equal their legacy row' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN format('%s users compared', (SELECT count(*) FROM legacy))
            ELSE format('%s users differ (first legacy ids: %s)', count(*),
                        (array_agg(DISTINCT user_settings_id))[1:10]::text) END AS detail
FROM diff;

-- Default roles and how memberships use them.
SELECT 'default roles admin (rank 1) and user (rank 1000)' AS check_name,
       count(*) FILTER (WHERE (name, rank) IN (('admin', 1), ('user', 1000))) = 2 AS ok,
       coalesce(string_agg(format('%s rank %s: %s memberships', name, rank,
                                  (SELECT count(*) FROM org_user m WHERE m.role_id = r.id)), '; '
                           ORDER BY rank), 'no roles') AS detail
FROM role r
WHERE name IN ('admin', 'user')
  AND EXISTS (SELECT 1 FROM orgmig_run WHERE step = 'user_settings_to_org' AND direction = 'upgrade');

-- No secret reached a report.
SELECT 'reports hold no secret values' AS check_name,
       count(*) = 0 AS ok,
       format('%s reports contain a legacy secret', count(*)) AS detail
FROM orgmig_report r
JOIN user_settings us ON us.id = r.source_id
WHERE r.step = 'user_settings_to_org'
  AND ((us.llm_api_key <> '' AND strpos(r.detail::text, us.llm_api_key) > 0)
    OR (us.llm_api_key_for_byor <> '' AND strpos(r.detail::text, us.llm_api_key_for_byor) > 0)
    OR (us.search_api_key <> '' AND strpos(r.detail::text, us.search_api_key) > 0)
    OR (us.sandbox_api_key <> '' AND strpos(r.detail::text, us.sandbox_api_key) > 0));

-- Every legacy column is copied (the settings row carries it, or it is the key) or reported as
-- unmapped: a column the data contract does not know is never left behind in silence.
SELECT 'every legacy column copied or reported' AS check_name,
       count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every column of user_settings is accounted for'
            ELSE format('%s columns neither copied nor reported: %s', count(*),
                        string_agg(a.attname::text, ', ' ORDER BY a.attnum)) END AS detail
FROM pg_attribute a
WHERE a.attrelid = 'user_settings'::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attname NOT IN ('id', 'keycloak_user_id')
  AND NOT EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = 'settings'::regclass
                  AND t.attname = a.attname AND NOT t.attisdropped)
  AND NOT EXISTS (SELECT 1 FROM orgmig_report r WHERE r.step = 'user_settings_to_org'
                  AND r.reason = 'unmapped_legacy_column' AND r.detail ->> 'column' = a.attname);
