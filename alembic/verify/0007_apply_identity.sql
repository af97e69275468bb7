-- Verification for revision 0007 (the identity provider's snapshot applied). Read-only; safe to
-- run at any time:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f alembic/verify/0007_apply_identity.sql
-- Every query returns rows (check_name text, ok boolean, detail text); healthy = all ok.
--
-- For every provider with a finished export (a provider without one is not checked: nothing was
-- applied). Group meanings are the ones the sync recorded in orgmig_identity_group (SimpleReport's
-- convention read with ORGMIG_IDP_ENV); a value the application changed after the export started
-- is kept by the sync and reported `app_edit_newer`, and is not counted as a disagreement here.
-- The memberships of Keycloak and Auth0 organizations depend on ORGMIG_ROLE_MAP, which this file
-- cannot see: `orgmig reconcile` compares those too.

-- The sync of each provider finished and left no planned account behind: in its plan's tables
-- (UNLOGGED; created by the first sync's plan), or below revision 0009 in revision 0006's work
-- list (orgmig_identity_todo); either is read only where it exists (query_to_xml: a query by name).
WITH providers AS (SELECT DISTINCT provider FROM idp_export_run WHERE status = 'finished')
SELECT 'identity sync of ' || p.provider || ' finished' AS check_name,
       coalesce(r.status = 'finished', false)
         AND NOT EXISTS (
             SELECT 1 FROM unnest(ARRAY['orgmig_identity_plan', 'orgmig_identity_todo']) AS t
             WHERE CASE WHEN to_regclass(t) IS NULL THEN false
                        ELSE (xpath('/row/n/text()', query_to_xml(
                                  format('SELECT count(*) AS n FROM %I WHERE provider = %L', t, p.provider),
                                  false, true, '')))[1]::text::int > 0 END)
         AS ok,
       coalesce(format('run %s %s: %s/%s accounts', r.id, r.status, r.rows_done, r.total_rows),
                'no sync run recorded: run `alembic upgrade head` or `orgmig sync --provider ' || p.provider || '`')
         AS detail
FROM providers p
LEFT JOIN LATERAL (SELECT * FROM orgmig_run WHERE step = 'identity:' || p.provider AND direction = 'upgrade'
                   ORDER BY id DESC LIMIT 1) r ON true
ORDER BY p.provider;

-- Every IdP account is linked to an app user, or reported with the reason it is not.
WITH providers AS (SELECT DISTINCT provider FROM idp_export_run WHERE status = 'finished'),
missing AS (
    SELECT u.provider, u.external_id FROM idp_user u JOIN providers p USING (provider)
    WHERE NOT EXISTS (SELECT 1 FROM user_identity i WHERE i.provider = u.provider AND i.external_id = u.external_id)
      AND NOT EXISTS (SELECT 1 FROM orgmig_report r WHERE r.step = 'identity:' || u.provider
                      AND r.source_table = 'idp_user' AND r.source_id = u.row_id
                      AND r.reason IN ('idp_user_without_app_user', 'email_ambiguous', 'email_unverified'))
)
SELECT 'every IdP account linked or reported' AS check_name, count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'every account of the finished exports is accounted for'
            ELSE format('%s accounts neither linked nor reported (first: %s)', count(*),
                        (array_agg(provider || ':' || external_id ORDER BY provider, external_id))[1:5]::text) END
         AS detail
FROM missing;

-- A link says how it was made, and that still holds (an account that has no email any more
-- keeps its user's: the sync does not compare a value the IdP does not have).
SELECT 'links match by what they say' AS check_name, count(*) = 0 AS ok,
       format('%s links whose subject or email no longer matches', count(*)) AS detail
FROM user_identity i
JOIN "user" u ON u.id = i.user_id
LEFT JOIN idp_user x ON x.provider = i.provider AND x.external_id = i.external_id
WHERE (i.matched_by = 'subject' AND u.keycloak_user_id IS DISTINCT FROM i.external_id)
   OR (i.matched_by = 'email' AND nullif(btrim(x.email), '') IS NOT NULL
       AND lower(btrim(u.email)) IS DISTINCT FROM lower(btrim(x.email))
       AND NOT EXISTS (SELECT 1 FROM orgmig_report r WHERE r.step = 'identity:' || i.provider
                       AND r.source_table = 'user' AND r.source_id = u.id
                       AND r.reason IN ('app_edit_newer', 'provider_conflict')));

-- Linked users carry the IdP's status (Okta ACTIVE, RECOVERY, PASSWORD_EXPIRED, LOCKED_OUT:
-- active; STAGED: pending; PROVISIONED: invited; SUSPENDED, DEPROVISIONED: disabled; Keycloak
-- disabled and Auth0 blocked: disabled) and site-admin flag (SR-{ENV}-ADMINS; Auth0 has no groups,
-- so no say in it). A user linked at two providers carries the values of the one that owns it
-- (ORGMIG_PROVIDER_PRIORITY): the other's sync reported the difference as provider_conflict.
WITH providers AS (SELECT DISTINCT provider FROM idp_export_run WHERE status = 'finished'),
linked AS (
    SELECT i.provider, u.id, u.status, u.is_site_admin,
           CASE x.status
               WHEN 'ACTIVE' THEN 'active' WHEN 'RECOVERY' THEN 'active' WHEN 'PASSWORD_EXPIRED' THEN 'active'
               WHEN 'LOCKED_OUT' THEN 'active' WHEN 'STAGED' THEN 'pending' WHEN 'PROVISIONED' THEN 'invited'
               WHEN 'SUSPENDED' THEN 'disabled' WHEN 'DEPROVISIONED' THEN 'disabled'
               WHEN 'enabled' THEN 'active' WHEN 'disabled' THEN 'disabled'
               WHEN 'active' THEN 'active' WHEN 'blocked' THEN 'disabled' END AS idp_status,
           EXISTS (SELECT 1 FROM idp_membership m JOIN orgmig_identity_group g
                     ON g.provider = m.provider AND g.kind = m.kind AND g.external_id = m.group_external_id
                   WHERE m.provider = x.provider AND m.user_external_id = x.external_id
                     AND g.meaning = 'site_admin') AS idp_site_admin
    FROM user_identity i JOIN providers p USING (provider)
    JOIN "user" u ON u.id = i.user_id
    JOIN idp_user x ON x.provider = i.provider AND x.external_id = i.external_id
    WHERE NOT EXISTS (SELECT 1 FROM orgmig_report r WHERE r.step = 'identity:' || i.provider
                      AND r.source_table = 'user' AND r.source_id = u.id
                       AND r.reason IN ('app_edit_newer', 'provider_conflict'))
)
SELECT check_name, count(*) FILTER (WHERE bad) = 0 AS ok,
       format('%s of %s linked users differ (first user ids: %s)', count(*) FILTER (WHERE bad), count(*),
              ((array_agg(id ORDER BY id) FILTER (WHERE bad))[1:10])::text) AS detail
FROM (SELECT 'linked users have the IdP''s status' AS check_name, id,
             idp_status IS NOT NULL AND status IS DISTINCT FROM idp_status AS bad FROM linked
      UNION ALL
      SELECT 'linked users have the IdP''s site-admin flag', id, is_site_admin <> idp_site_admin FROM linked
      WHERE provider <> 'auth0') c
GROUP BY check_name
ORDER BY check_name;

-- Every org the snapshot names exists, matched by external_id.
SELECT 'every org the IdP names exists' AS check_name, count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'all present'
            ELSE format('%s missing (first: %s)', count(*), (array_agg(org_external_id))[1:5]::text) END
         AS detail
FROM (SELECT DISTINCT c.org_external_id FROM orgmig_identity_group c
      JOIN idp_export_run r ON r.provider = c.provider AND r.status = 'finished'
      WHERE c.meaning IN ('role', 'facility', 'organization')
        AND NOT EXISTS (SELECT 1 FROM org o WHERE o.external_id = c.org_external_id)) m;

-- SimpleReport's groups (Okta and Keycloak): each linked user is a member of an org exactly
-- where a role group gives a role, with the highest privilege (ADMIN over USER over ENTRY_ONLY),
-- all_facilities for ADMIN or ALL_FACILITIES, and access to single facilities only without them.
WITH providers AS (SELECT DISTINCT provider FROM idp_export_run WHERE status = 'finished'),
words AS (
    SELECT i.provider, i.user_id, o.id AS org_id, g.role_name, g.facility_id
    FROM user_identity i JOIN providers p USING (provider)
    JOIN idp_membership m ON m.provider = i.provider AND m.user_external_id = i.external_id
    JOIN orgmig_identity_group g ON g.provider = m.provider AND g.kind = m.kind AND g.external_id = m.group_external_id
    JOIN org o ON o.external_id = g.org_external_id
    WHERE g.meaning IN ('role', 'facility') AND g.kind = 'group'
),
want AS (
    SELECT provider, user_id, org_id,
           CASE WHEN bool_or(role_name = 'ADMIN') THEN 'admin' WHEN bool_or(role_name = 'USER') THEN 'user'
                WHEN bool_or(role_name = 'ENTRY_ONLY') THEN 'entry_only' END AS role,
           bool_or(role_name IN ('ADMIN', 'ALL_FACILITIES')) AS all_facilities,
           array_agg(facility_id) FILTER (WHERE facility_id IS NOT NULL) AS facilities
    FROM words GROUP BY provider, user_id, org_id
),
managed AS (
    SELECT DISTINCT c.provider, o.id AS org_id FROM orgmig_identity_group c JOIN org o ON o.external_id = c.org_external_id
    JOIN providers p USING (provider)
    WHERE c.meaning IN ('role', 'facility') AND c.kind = 'group'
),
have AS (
    -- users whose account the snapshot still has (the sync leaves the others' rows as they are)
    SELECT i.provider, m.user_id, m.org_id, r.name AS role, m.all_facilities
    FROM user_identity i JOIN org_user m ON m.user_id = i.user_id
    JOIN idp_user x ON x.provider = i.provider AND x.external_id = i.external_id
    JOIN managed g ON g.provider = i.provider AND g.org_id = m.org_id
    JOIN role r ON r.id = m.role_id
),
diff AS (
    SELECT coalesce(w.provider, h.provider) AS provider, coalesce(w.user_id, h.user_id) AS user_id
    FROM (SELECT * FROM want WHERE role IS NOT NULL) w
    FULL JOIN have h ON h.provider = w.provider AND h.user_id = w.user_id AND h.org_id = w.org_id
    WHERE w.user_id IS NULL OR h.user_id IS NULL OR h.role <> w.role OR h.all_facilities <> w.all_facilities
    UNION ALL
    SELECT w.provider, w.user_id
    FROM want w
    WHERE w.role IS NOT NULL
      AND (SELECT coalesce(array_agg(f.facility_id ORDER BY f.facility_id), '{}')
             FROM org_user_facility f WHERE f.org_id = w.org_id AND f.user_id = w.user_id)
          <> CASE WHEN w.all_facilities THEN '{}'::uuid[]
                  ELSE coalesce((SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(w.facilities) x
                                 WHERE EXISTS (SELECT 1 FROM facility y WHERE y.id = x AND y.org_id = w.org_id)),
                                '{}') END
)
SELECT 'memberships agree with SimpleReport''s groups' AS check_name, count(*) = 0 AS ok,
       CASE WHEN count(*) = 0 THEN 'roles, all-facilities flags and facility access as the groups say'
            ELSE format('%s users differ (first user ids: %s)', count(*),
                        ((array_agg(DISTINCT user_id))[1:10])::text) END AS detail
FROM (SELECT DISTINCT d.provider, d.user_id FROM diff d
      WHERE NOT EXISTS (SELECT 1 FROM orgmig_report r WHERE r.step = 'identity:' || d.provider
                        AND r.source_table = 'user' AND r.source_id = d.user_id
                        AND r.reason = 'app_edit_newer')) bad;

-- No access to single facilities where the member already covers all of them.
SELECT 'no facility rows where a member covers all facilities' AS check_name, count(*) = 0 AS ok,
       format('%s facility rows beside all_facilities', count(*)) AS detail
FROM org_user_facility f JOIN org_user m ON m.org_id = f.org_id AND m.user_id = f.user_id
WHERE m.all_facilities;

-- Reports name a reason the contract knows.
SELECT 'identity reports have known reasons' AS check_name, count(*) = 0 AS ok,
       coalesce('unknown: ' || string_agg(DISTINCT reason, ', '), 'all known') AS detail
FROM orgmig_report
WHERE step LIKE 'identity:%'
  AND reason NOT IN ('malformed_group_name', 'unknown_role', 'invalid_facility_id', 'facility_in_two_orgs',
                     'no_role_in_org', 'idp_user_without_app_user', 'app_user_without_idp_account',
                     'email_ambiguous', 'email_unverified', 'app_edit_newer', 'provider_conflict');
