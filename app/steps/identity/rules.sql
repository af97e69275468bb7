-- Rules of the identity contract written once and expanded where a statement of plan.sql,
-- state.sql, compare.sql or apply.sql names them (`{name}`, or `{name:alias}` for a rule about one
-- row, written here for the alias `{row}`; app.steps.identity.SQL), so the batches, the plan, dry
-- runs, reconcile and the login endpoint cannot disagree on them. What differs between providers
-- comes in as bind parameters, the providers' capabilities (app.provider_names.CAPABILITIES):
-- :status_map, :matches_by_subject, :roles_from, :has_site_admin_group, :subject_prefix,
-- :org_named_by_description. Tested one by one in tests/steps/identity_rules.

-- name: group_meaning
-- What each group of :provider means (idp_group g): Okta and Keycloak groups follow SimpleReport's
-- convention (SR-{ENV}-TENANT:{org}:{ROLE}, SR-{ENV}-TENANT:{org}:FACILITY_ACCESS:{uuid},
-- SR-{ENV}-ADMINS); groups of other environments and outside the convention mean nothing ('ignored'
-- or a report reason). Keycloak and Auth0 organizations are orgs themselves. The names are taken
-- apart with string functions, which say what '^SR-{ENV}-TENANT:([^:]+):FACILITY_ACCESS:(.*)$' and
-- '^SR-{ENV}-TENANT:([^:]+):([^:]+)$' would capture (m.fac, m.role) at a fifth of the cost of
-- regexp_match (0.5 s for 18,000 groups). OFFSET 0 keeps each LATERAL a subquery evaluated once per
-- group.
SELECT g.provider, g.kind, g.external_id, p.meaning,
       CASE WHEN g.kind = 'organization' THEN g.external_id
            WHEN p.meaning IN ('facility', 'invalid_facility_id') THEN m.fac[1]
            WHEN p.meaning IN ('role', 'unknown_role') THEN m.role[1] END AS org_external_id,
       CASE WHEN p.meaning IN ('role', 'unknown_role') THEN m.role[2] END AS role_name,
       CASE WHEN p.meaning = 'facility' THEN CAST(m.fac[2] AS uuid) END AS facility_id
FROM idp_group g
CROSS JOIN LATERAL (
    -- after 'SR-{ENV}-TENANT:': the org (up to the first colon, not empty) and what follows it
    SELECT split_part(t.rest, ':', 1) AS org, substr(t.rest, strpos(t.rest, ':') + 1) AS tail,
           strpos(t.rest, ':') > 1 AS ok
    FROM (SELECT CASE WHEN left(g.name, length(:env) + 11) = 'SR-' || :env || '-TENANT:'
                      THEN substr(g.name, length(:env) + 12) END AS rest) t
    OFFSET 0
) s
CROSS JOIN LATERAL (
    SELECT CASE WHEN s.ok AND left(s.tail, 16) = 'FACILITY_ACCESS:' THEN ARRAY[s.org, substr(s.tail, 17)] END AS fac,
           CASE WHEN s.ok AND s.tail <> '' AND strpos(s.tail, ':') = 0 THEN ARRAY[s.org, s.tail] END AS role
    OFFSET 0
) m
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g.kind = 'organization' THEN 'organization'
        WHEN g.kind <> 'group' THEN 'ignored'
        WHEN g.name = 'SR-' || :env || '-ADMINS' THEN 'site_admin'
        WHEN left(g.name, length(:env) + 4) <> 'SR-' || :env || '-' THEN 'ignored'
        WHEN m.fac IS NOT NULL THEN
            CASE WHEN m.fac[2] ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 THEN 'facility' ELSE 'invalid_facility_id' END
        WHEN m.role IS NOT NULL THEN
            CASE WHEN m.role[2] = ANY (CAST(:role_words AS text[])) THEN 'role' ELSE 'unknown_role' END
        ELSE 'malformed_group_name' END AS meaning
    OFFSET 0
) p
WHERE g.provider = :provider

-- name: facility_in_two_orgs
-- A facility group {row} (facility_id, org_external_id) whose facility is named under two orgs,
-- among the snapshot's facility groups (`fac`, a CTE of the statement) or against the app's
-- facility table, belongs to neither for sure. The facilities named under two orgs are found in
-- one grouped pass (a subquery per facility group would read all of them again for each).
({row}.facility_id IN (SELECT d.facility_id FROM fac d
                       GROUP BY d.facility_id HAVING count(DISTINCT d.org_external_id) > 1)
 OR EXISTS (SELECT 1 FROM facility f JOIN org o ON o.id = f.org_id
            WHERE f.id = {row}.facility_id AND o.external_id IS DISTINCT FROM {row}.org_external_id))

-- name: account_values
-- An account's values as the app stores them (idp_user u): emails and names trimmed, empty as
-- NULL; the email compared lower-cased; the provider's status word mapped by :status_map.
nullif(btrim(u.email), '') AS email, nullif(lower(btrim(u.email)), '') AS email_norm,
coalesce(u.email_verified, false) AS email_verified,
CAST(:status_map AS jsonb) ->> u.status AS app_status,
nullif(btrim(u.first_name), '') AS first_name, nullif(btrim(u.last_name), '') AS last_name

-- name: account_state
-- An account's desired state, the columns of the plan's table (orgmig_identity_plan) and of a
-- batch's accounts (state.batch_account): its values (account_values), whether it is a site
-- admin, the user it is linked to or matched (match) and how, or the match's problem.
external_id text NOT NULL,
email text,
email_norm text,
email_verified boolean NOT NULL,
app_status text,
first_name text,
last_name text,
site_admin boolean NOT NULL,
user_id integer,
matched_by text,
problem text,
detail jsonb

-- name: membership_state
-- An account's desired membership in one org, the columns of the plan's table
-- (orgmig_identity_plan_member) and of a batch's (state.batch_desired_membership): the role
-- (membership), whether it covers all facilities, the facilities granted one by one, its problem.
org_id uuid NOT NULL,
org_external_id text NOT NULL,
role_id integer,
all_facilities boolean NOT NULL,
facility_ids uuid[] NOT NULL,
problem text,
detail jsonb

-- name: role_words
-- Per account and org, the words the IdP gives (external_id, org, word, facility_id), read from
-- the statement's memberships `mem` (idp_membership's columns) and group meanings `grp`
-- (orgmig_identity_group's): a role group's role ('ADMIN', ...), 'FACILITY' with a facility
-- group's facility; an organization's members 'MEMBER' and their roles, mapped through :role_map
-- ({lower(idp role): ROLE}, else the same name in any case). Where the roles come from is the
-- provider's capability :roles_from: 'membership' (Auth0: per membership, a name that maps to
-- nothing is an unknown role) or 'user' (Keycloak realm roles: names that map to nothing mean
-- nothing).
SELECT m.user_external_id AS external_id, g.org_external_id AS org,
       coalesce(g.role_name, 'FACILITY') AS word, g.facility_id
FROM mem m
JOIN grp g ON g.provider = m.provider AND g.kind = m.kind AND g.external_id = m.group_external_id
WHERE g.meaning IN ('role', 'facility')
UNION ALL
SELECT m.user_external_id, m.group_external_id, r.word, NULL
FROM mem m
CROSS JOIN LATERAL (
    SELECT 'MEMBER' AS word
    UNION ALL
    SELECT coalesce(CAST(:role_map AS jsonb) ->> lower(n.name),
                    CASE WHEN upper(n.name) = ANY (CAST(:role_words AS text[])) THEN upper(n.name) END,
                    CASE WHEN :roles_from = 'membership' THEN 'UNKNOWN:' || n.name END)
    FROM (SELECT jsonb_array_elements_text(coalesce(m.attributes -> 'roles', '[]'::jsonb)) AS name
          WHERE :roles_from = 'membership'
          UNION ALL
          SELECT rg.name FROM idp_membership rm
          JOIN idp_group rg ON rg.provider = rm.provider AND rg.kind = rm.kind
                           AND rg.external_id = rm.group_external_id
          WHERE :roles_from = 'user' AND rm.provider = m.provider AND rm.kind = 'role'
            AND rm.user_external_id = m.user_external_id) n
) r
WHERE m.kind = 'organization' AND r.word IS NOT NULL
  AND EXISTS (SELECT 1 FROM grp g WHERE g.provider = m.provider AND g.kind = m.kind
                                    AND g.external_id = m.group_external_id AND g.meaning = 'organization')

-- name: role_of_word
-- The app role a word names (`roles r`, a CTE of the statement: role's id, name and rank)
r.name = lower(w.word) AND r.name = ANY (CAST(:role_names AS text[]))

-- name: membership
-- One account's membership in one org, from its words (`words w`, `roles r` joined by
-- role_of_word, grouped by account and org): the highest privilege among the roles (the lowest
-- rank; on a rank tie the lowest role id), whether it covers all facilities (ADMIN or
-- ALL_FACILITIES), and its problem. NO_ACCESS is neither stored nor compared: a member with
-- NO_ACCESS and nothing else (a group's, or an organization's member role) has no role there and no
-- report either.
(min(ARRAY[r.rank, r.id]) FILTER (WHERE r.id IS NOT NULL))[2] AS role_id,
bool_or(w.word IN ('ADMIN', 'ALL_FACILITIES')) AS all_facilities,
CASE WHEN bool_or(w.word LIKE 'UNKNOWN:%') THEN 'unknown_role'
     WHEN NOT bool_or(r.id IS NOT NULL)
          AND (bool_or(w.word NOT IN ('NO_ACCESS', 'MEMBER')) OR NOT bool_or(w.word = 'NO_ACCESS'))
          THEN 'no_role_in_org'
END AS problem

-- name: match
-- Which app user an unlinked account b (external_id, email_norm, email_verified) is, first that
-- applies, as LATERALs giving mt.user_id, mt.matched_by, mt.problem and mt.detail: where the
-- provider matches by subject (:matches_by_subject, Keycloak) the user whose keycloak_user_id is
-- the account's id; the one user holding the account's email (trimmed, any case) where the IdP
-- marks it verified and no other account of the provider holds it. A user already linked to
-- another account is not taken again, and a user another account matches by its subject is no
-- candidate by email. Anything else is a problem, never a guess. A user this run (:run_id) linked
-- or created is as the plan saw it (the dry run predicted from the tables before the run, and an
-- earlier batch's new user is no holder of the email for a later batch's account).
LEFT JOIN LATERAL (
    SELECT u.id FROM "user" u
    WHERE :matches_by_subject AND u.keycloak_user_id = b.external_id
      AND NOT EXISTS (SELECT 1 FROM user_identity i WHERE i.provider = :provider AND i.user_id = u.id)
) s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n, array_agg(u.id) AS ids,
           coalesce(bool_or(EXISTS (SELECT 1 FROM user_identity i
                                    WHERE i.provider = :provider AND i.user_id = u.id)), false) AS taken,
           -- this account and the others of the provider holding the email (at login the account
           -- may be newer than the export)
           1 + (SELECT count(*) FROM idp_user x
                 WHERE x.provider = :provider AND lower(btrim(x.email)) = b.email_norm
                   AND x.external_id <> b.external_id) AS accounts
    FROM "user" u
    WHERE b.email_norm IS NOT NULL AND lower(btrim(u.email)) = b.email_norm
      AND NOT EXISTS (SELECT 1 FROM user_identity i
                      JOIN orgmig_identity_undo x
                        ON x.table_name = 'user_identity' AND x.row_key = i.provider || '|' || i.external_id
                      WHERE i.provider = :provider AND i.user_id = u.id AND x.run_id = :run_id)
      -- a user whose keycloak_user_id is another unlinked account's id is that account's, its
      -- email about to become that account's: no candidate for this one
      AND NOT EXISTS (SELECT 1 FROM idp_user x
                      WHERE :matches_by_subject AND x.provider = :provider
                        AND x.external_id = u.keycloak_user_id AND x.external_id <> b.external_id
                        AND NOT EXISTS (SELECT 1 FROM user_identity j
                                        WHERE j.provider = x.provider AND j.external_id = x.external_id))
) e ON true
CROSS JOIN LATERAL (
    SELECT s.id IS NULL AND e.n = 1 AND b.email_verified AND e.accounts = 1 AND NOT e.taken AS by_email
) k
CROSS JOIN LATERAL (
    SELECT coalesce(s.id, CASE WHEN k.by_email THEN e.ids[1] END) AS user_id,
           CASE WHEN s.id IS NOT NULL THEN 'subject' WHEN k.by_email THEN 'email' END AS matched_by,
           CASE WHEN s.id IS NOT NULL OR k.by_email THEN NULL
                WHEN e.n > 1 OR (e.n = 1 AND (e.accounts > 1 OR e.taken)) THEN 'email_ambiguous'
                WHEN e.n = 1 AND NOT b.email_verified THEN 'email_unverified'
                ELSE 'idp_user_without_app_user' END AS problem,
           CASE WHEN s.id IS NULL AND NOT k.by_email AND e.n >= 1
                THEN jsonb_build_object('app_users', e.n, 'accounts', e.accounts, 'linked_elsewhere', e.taken)
           END AS detail
) mt

-- name: user_columns
-- The columns of "user" u whose value differs from the account's b (LATERAL c, c.cols). A value
-- the IdP does not have (no email, no name, a status it does not define, the site-admin flag where
-- the provider has no site-admin group: :has_site_admin_group) is not compared.
CROSS JOIN LATERAL (
    SELECT array_remove(ARRAY[
        CASE WHEN b.app_status IS NOT NULL AND u.status <> b.app_status THEN 'status' END,
        CASE WHEN b.email IS NOT NULL AND u.email IS DISTINCT FROM b.email THEN 'email' END,
        CASE WHEN b.email IS NOT NULL AND u.email_verified IS DISTINCT FROM b.email_verified
             THEN 'email_verified' END,
        CASE WHEN b.first_name IS NOT NULL AND u.first_name IS DISTINCT FROM b.first_name THEN 'first_name' END,
        CASE WHEN b.last_name IS NOT NULL AND u.last_name IS DISTINCT FROM b.last_name THEN 'last_name' END,
        CASE WHEN :has_site_admin_group AND u.is_site_admin <> b.site_admin THEN 'is_site_admin' END
    ]::text[], NULL) AS cols
) c

-- name: app_edit
-- Row {row} ("user" or org_user) is the app's edit, never overwritten: updated after the export
-- started, updated at least once (updated_at <> created_at), and not to the updated_at this step
-- left (applied_updated_at in orgmig_identity_undo, the row's undo row joined as x).
coalesce({row}.updated_at > :export_started AND {row}.updated_at <> {row}.created_at
         AND {row}.updated_at IS DISTINCT FROM x.applied_updated_at, false)

-- name: access_app_edit
-- Facility access {row} (an org_user_facility row) is the app's: added after the export started,
-- and not by this step (no undo row x).
coalesce({row}.created_at > :export_started AND x.row_key IS NULL, false)

-- name: managed_orgs
-- The orgs the IdP manages, by external id: those its valid groups and organizations name (`grp`).
SELECT g.org_external_id FROM grp g WHERE g.meaning IN ('role', 'facility', 'organization')

-- name: owner
-- The provider that owns app user u's status and profile values (docs/identity.md, "Several
-- providers"): :provider when no account of another provider is linked to u; else the first of
-- :priority (ORGMIG_PROVIDER_PRIORITY) among u's providers, else the one that linked u first.
CASE WHEN NOT EXISTS (SELECT 1 FROM user_identity i WHERE i.user_id = u.id AND i.provider <> :provider)
THEN CAST(:provider AS text)
ELSE (SELECT p.provider FROM (
          SELECT i.provider, i.created_at FROM user_identity i
          WHERE i.user_id = u.id AND i.provider <> :provider
          UNION ALL
          SELECT :provider, coalesce((SELECT i.created_at FROM user_identity i
                                      WHERE i.provider = :provider AND i.user_id = u.id), 'infinity')
      ) p
      ORDER BY coalesce(array_position(CAST(:priority AS text[]), p.provider), 1000), p.created_at,
               p.provider
      LIMIT 1) END
