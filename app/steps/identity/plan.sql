-- Step identity:<provider>, before its batches: the export to apply, what each IdP group means,
-- the roles, orgs and facilities the snapshot needs, and the reports on groups; then compare.plan.
-- `orgmig sync --dry-run` runs the same statements in a transaction it rolls back.

-- name: exports
-- The latest finished export of :provider, and an unfinished one started after it: one still
-- running (it may write pages any moment), or one that failed after it wrote pages (they are in
-- the snapshot tables already, so the snapshot is not that finished export's any more), and
-- whether it wrote any. A failed export that wrote no page (a wrong token: 401 at its first
-- request) left the snapshot as it was: not in the way.
WITH done AS (
    SELECT id, started_at FROM idp_export_run
    WHERE provider = :provider AND status = 'finished'
    ORDER BY id DESC LIMIT 1
),
unfinished AS (
    SELECT r.id, r.status,
           EXISTS (SELECT 1 FROM idp_user x WHERE x.last_seen_run_id = r.id)
           OR EXISTS (SELECT 1 FROM idp_group x WHERE x.last_seen_run_id = r.id)
           OR EXISTS (SELECT 1 FROM idp_membership x WHERE x.last_seen_run_id = r.id)
           OR EXISTS (SELECT 1 FROM idp_export_cursor c WHERE c.run_id = r.id AND c.pages > 0) AS wrote
    FROM idp_export_run r
    WHERE r.provider = :provider AND r.status IN ('running', 'failed')
      AND r.id > coalesce((SELECT id FROM done), 0)
)
SELECT (SELECT id FROM done) AS finished_id,
       (SELECT started_at FROM done) AS started_at,
       u.id AS unfinished_id, u.status AS unfinished_status, u.wrote AS unfinished_wrote
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT * FROM unfinished WHERE status = 'running' OR wrote ORDER BY id LIMIT 1) u ON true;

-- name: environments
-- The environments of :provider's groups that follow SimpleReport's convention (SR-{ENV}-TENANT:...
-- and SR-{ENV}-ADMINS), with how many groups each: an export with such groups but none of
-- ORGMIG_IDP_ENV's environment is a setting pointing at another installation, never applied. The
-- names are taken apart with string functions, which say what
-- '^SR-([A-Za-z0-9_]+)-(?:TENANT:|ADMINS$)' would capture (the environment holds no '-': it runs
-- to the first one) at a seventh of the cost of matching every name against it (0.2 s for
-- 3,600 groups on a loaded host, once per export a command applies or compares).
SELECT s.env, count(*) AS n
FROM idp_group g
CROSS JOIN LATERAL (SELECT split_part(substr(g.name, 4), '-', 1) AS env) s
WHERE g.provider = :provider AND g.kind = 'group' AND left(g.name, 3) = 'SR-'
  AND (substr(g.name, length(s.env) + 5, 7) = 'TENANT:' OR substr(g.name, length(s.env) + 5) = 'ADMINS')
  AND s.env ~ '^[A-Za-z0-9_]+$'
GROUP BY 1
ORDER BY 2 DESC, 1;

-- name: plan_tables
-- The desired state a sync's plan keeps for its batches (compare.keep), one row per account with
-- work (the keys the run walks: Step.keys) and one per account and org (rules.account_state,
-- rules.membership_state), and which run they belong to (orgmig_identity_plan_run: NULL until the
-- run that follows the plan claims them, Step.prepare). UNLOGGED: they write no WAL, and a server
-- restart empties them, which the run notices (no row of its own in orgmig_identity_plan_run)
-- before its next claim or batch and plans again (compare.refill: the accounts with work now, by
-- the same comparison). Created here, not by a schema revision, because revision 0007 (which
-- runs the step) comes before any later schema revision; like revision 0004's capture, they are
-- not part of the model, and revision 0007's downgrade drops them (drop_plan_tables).
CREATE UNLOGGED TABLE IF NOT EXISTS orgmig_identity_plan (
    provider text NOT NULL,
    row_id bigint NOT NULL,
    {account_state},
    linked boolean NOT NULL,
    PRIMARY KEY (provider, row_id)
);
CREATE UNLOGGED TABLE IF NOT EXISTS orgmig_identity_plan_member (
    provider text NOT NULL,
    row_id bigint NOT NULL,
    {membership_state},
    PRIMARY KEY (provider, row_id, org_id)
);
CREATE UNLOGGED TABLE IF NOT EXISTS orgmig_identity_plan_run (
    provider text PRIMARY KEY,
    run_id bigint
);

-- name: drop_plan_tables
DROP TABLE IF EXISTS orgmig_identity_plan, orgmig_identity_plan_member, orgmig_identity_plan_run;

-- name: forget
-- A new run starts from a clean slate: the previous run's group meanings and reports (its kept
-- plan: forget_kept).
WITH g AS (DELETE FROM orgmig_identity_group WHERE provider = :provider RETURNING 1)
DELETE FROM orgmig_report WHERE step = :step;

-- name: forget_kept
-- The desired state kept by an earlier plan of :provider (compare.keep), and whose it was.
WITH a AS (DELETE FROM orgmig_identity_plan WHERE provider = :provider RETURNING 1),
     m AS (DELETE FROM orgmig_identity_plan_member WHERE provider = :provider RETURNING 1)
DELETE FROM orgmig_identity_plan_run WHERE provider = :provider;

-- name: kept_for
-- The plan's tables hold the desired state planned for a run of :provider: its run (NULL until a
-- run claims it); no row when they are empty (a server restart, or never planned).
SELECT run_id FROM orgmig_identity_plan_run WHERE provider = :provider;

-- name: first_load
-- Whether run :run_id is the provider's first load: no account of :provider was linked before the
-- run started (the links a run resumed after a kill made itself, and those the login endpoint made
-- meanwhile, are younger). Every write of a first load but those to the app users its accounts
-- match by email or subject is an insert.
SELECT NOT EXISTS (SELECT 1 FROM user_identity i
                   WHERE i.provider = :provider
                     AND i.created_at < (SELECT r.started_at FROM orgmig_run r WHERE r.id = :run_id));

-- name: keep_for
-- The plan's tables hold the desired state for :run_id (NULL: the plan just made, for the run
-- about to open).
INSERT INTO orgmig_identity_plan_run (provider, run_id) VALUES (:provider, :run_id)
ON CONFLICT (provider) DO UPDATE SET run_id = EXCLUDED.run_id;

-- name: classify
-- What each group of :provider means (rules.group_meaning). Keycloak and Auth0 roles are read per
-- member (state.load_desired).
INSERT INTO orgmig_identity_group (provider, kind, external_id, meaning, org_external_id, role_name,
                                   facility_id, run_id)
SELECT c.provider, c.kind, c.external_id, c.meaning, c.org_external_id, c.role_name, c.facility_id, NULL
FROM ({group_meaning}) c;

-- name: facility_conflicts
-- A facility named under two orgs (in the snapshot, or here against the app's facility table)
-- belongs to neither for sure (rules.facility_in_two_orgs): every group naming it is reported,
-- none applied.
WITH fac AS (
    SELECT d.facility_id, d.org_external_id FROM orgmig_identity_group d
    WHERE d.provider = :provider AND d.meaning = 'facility'
)
UPDATE orgmig_identity_group c SET meaning = 'facility_in_two_orgs'
WHERE c.provider = :provider AND c.meaning = 'facility' AND {facility_in_two_orgs:c};

-- name: analyze_groups
-- Every batch joins the accounts' memberships to these meanings: give the planner their
-- statistics now (filled a moment ago; without them it expects one group per meaning, and reads
-- every membership of the provider in every batch).
ANALYZE orgmig_identity_group;

-- name: report_groups
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail)
SELECT :step, 'idp_group', g.row_id, c.meaning, false,
       jsonb_strip_nulls(jsonb_build_object('group', g.name, 'org', c.org_external_id))
FROM orgmig_identity_group c
JOIN idp_group g ON g.provider = c.provider AND g.kind = c.kind AND g.external_id = c.external_id
WHERE c.provider = :provider
  AND c.meaning IN ('malformed_group_name', 'unknown_role', 'invalid_facility_id', 'facility_in_two_orgs')
ON CONFLICT (step, source_table, source_id, reason) DO UPDATE SET detail = EXCLUDED.detail;

-- name: create_orgs
-- Every org the snapshot names that the app does not have (matched by external_id), named by
-- the IdP where it has a name, else by its external id; a name taken gets the id appended.
WITH named AS (
    SELECT DISTINCT ON (c.org_external_id) c.org_external_id AS ext,
           coalesce(CASE WHEN c.meaning = 'organization' THEN
                        nullif(btrim(CASE WHEN :org_named_by_description THEN coalesce(g.description, g.name)
                                          ELSE g.name END), '') END,
                    c.org_external_id) AS name
    FROM orgmig_identity_group c
    JOIN idp_group g ON g.provider = c.provider AND g.kind = c.kind AND g.external_id = c.external_id
    WHERE c.provider = :provider AND c.meaning IN ('role', 'facility', 'organization')
      AND NOT EXISTS (SELECT 1 FROM org o WHERE o.external_id = c.org_external_id)
    ORDER BY c.org_external_id, c.meaning = 'organization' DESC
),
new AS (
    SELECT gen_random_uuid() AS id, n.ext,
           CASE WHEN count(*) OVER (PARTITION BY n.name) > 1
                  OR EXISTS (SELECT 1 FROM org o WHERE o.name = n.name)
                THEN n.name || ' (' || n.ext || ')' ELSE n.name END AS name
    FROM named n
),
ins AS (
    INSERT INTO org (id, name, external_id) SELECT id, name, ext FROM new
    RETURNING id
)
INSERT INTO orgmig_identity_undo (provider, table_name, row_key, before)
SELECT :provider, 'org', id::text, NULL FROM ins;

-- name: create_facilities
-- Every facility the snapshot grants access to, in its org. Those that exist are skipped by
-- their primary key (ON CONFLICT): a NOT EXISTS planned while facility looked empty read the
-- table once per new facility, quadratic in the facilities of a first sync.
WITH wanted AS (
    SELECT DISTINCT c.facility_id, o.id AS org_id
    FROM orgmig_identity_group c JOIN org o ON o.external_id = c.org_external_id
    WHERE c.provider = :provider AND c.meaning = 'facility'
),
ins AS (
    INSERT INTO facility (id, org_id)
    SELECT w.facility_id, w.org_id FROM wanted w
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO orgmig_identity_undo (provider, table_name, row_key, before)
SELECT :provider, 'facility', id::text, NULL FROM ins;

-- name: analyze_orgs
-- Every batch finds its accounts' orgs by external id: give the planner the statistics of the
-- orgs and facilities just created (without them, an org table it believes empty is read whole
-- for every membership of a batch instead of probed by its index: 45 ms a batch at 400 orgs
-- rather than 11).
ANALYZE org, facility;

-- name: reports_by_reason
-- The step's reports by reason (`--dry-run`: after plan.forget and plan.report_groups, the group
-- reports of this plan).
SELECT reason, count(*) FROM orgmig_report WHERE step = :step GROUP BY reason;
