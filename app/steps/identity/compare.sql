-- Step identity:<provider>: the snapshot's desired state compared with the tables in one
-- read-only statement, for every account of :provider at once (set-based: hash joins over the
-- snapshot and the tables, nothing written, no temporary table). It expands the rules of
-- rules.sql that state.sql's batches expand (group meanings, facilities named under two orgs,
-- account values, role words, memberships, matching, compared columns, app edits, owner) and
-- predicts the users a sync would create, so what it finds is what a sync would write. Orgs are
-- compared by their external id: an org the snapshot names and the app does not have yet is one
-- a sync would create, with no member.

-- name: groups_from_snapshot
-- What each group means, read from the snapshot with the rules of plan.classify and
-- plan.facility_conflicts (rules.group_meaning, rules.facility_in_two_orgs; reconcile writes
-- nothing, so it cannot use orgmig_identity_group): the groups that mean something for a member
-- (role, organization, site admin, facility).
WITH cls AS MATERIALIZED ({group_meaning}),
fac AS (SELECT d.facility_id, d.org_external_id FROM cls d WHERE d.meaning = 'facility')
SELECT c.provider, c.kind, c.external_id, c.org_external_id, c.role_name, c.facility_id, c.meaning
FROM cls c
WHERE c.meaning IN ('role', 'organization', 'site_admin')
   OR (c.meaning = 'facility' AND NOT {facility_in_two_orgs:c})

-- name: groups_of_plan
-- What each group means, as the plan of this sync recorded it (plan.classify, facility_conflicts).
SELECT c.provider, c.kind, c.external_id, c.org_external_id, c.role_name, c.facility_id, c.meaning
FROM orgmig_identity_group c
WHERE c.provider = :provider AND c.meaning IN ('role', 'organization', 'site_admin', 'facility')

-- name: chain
-- The desired state of every account and the differences, as CTEs; {groups} is one of the two
-- statements above.
WITH grp AS MATERIALIZED (
{groups}
),
-- the orgs the IdP manages (plan.create_orgs makes those missing), and the roles (app.steps.roles
-- makes those missing, :role_names with :role_ranks: a stand-in id, which no membership has yet)
roles AS (
    SELECT r.id, r.name, r.rank FROM role r
    UNION ALL
    SELECT -w.rank, w.name, w.rank
    FROM unnest(CAST(:role_names AS text[]), CAST(:role_ranks AS integer[])) w(name, rank)
    WHERE NOT EXISTS (SELECT 1 FROM role r WHERE r.name = w.name)
),
managed AS MATERIALIZED ({managed_orgs}),
site AS MATERIALIZED (
    SELECT DISTINCT m.user_external_id AS external_id
    FROM grp g JOIN idp_membership m
      ON m.provider = :provider AND m.kind = g.kind AND m.group_external_id = g.external_id
    WHERE g.meaning = 'site_admin'
),
-- state.load_users, every account
acct AS MATERIALIZED (
    SELECT u.row_id, u.external_id, {account_values},
           u.external_id IN (SELECT s.external_id FROM site s) AS site_admin,
           i.user_id
    FROM idp_user u
    LEFT JOIN user_identity i ON i.provider = u.provider AND i.external_id = u.external_id
    WHERE u.provider = :provider
),
-- state.load_desired: per account and org, the role words the IdP gives, and the membership
-- (`mem` read where role_words reads it, not written aside first: every membership with all its
-- columns, read twice)
mem AS NOT MATERIALIZED (SELECT * FROM idp_membership WHERE provider = :provider),
words AS MATERIALIZED ({role_words}),
member AS MATERIALIZED (
    SELECT w.external_id, w.org, {membership},
           -- what a sync's plan keeps for its batches (keep_members): the facilities granted one
           -- by one, and the role names the IdP gives that are no role here
           array_agg(w.facility_id) FILTER (WHERE w.facility_id IS NOT NULL) AS facility_ids,
           array_agg(substr(w.word, 9)) FILTER (WHERE w.word LIKE 'UNKNOWN:%') AS unknown_roles
    FROM words w
    LEFT JOIN roles r ON {role_of_word}
    GROUP BY w.external_id, w.org
),
-- state.match, and the accounts apply.create_users makes a user for, among those not linked yet
unlinked AS MATERIALIZED (
    SELECT x.row_id, coalesce(x.matched, CASE WHEN x.predicted THEN -x.row_id END) AS user_id,
           x.matched IS NOT NULL AS matched, CASE WHEN NOT x.predicted THEN x.problem END AS problem,
           -- the match as the batches take it from the plan (keep): its user, how, its problem
           x.matched AS matched_user_id, x.matched_by, x.problem AS match_problem, x.detail
    FROM (
    SELECT b.row_id, mt.user_id AS matched, mt.problem, mt.matched_by, mt.detail,
           mt.problem = 'idp_user_without_app_user' AND b.app_status IS DISTINCT FROM 'disabled'
               -- (IN, not a correlated EXISTS: a CTE has no index, so that would scan it per account)
               AND b.external_id IN (SELECT d.external_id FROM member d WHERE d.role_id IS NOT NULL)
               AS predicted
    FROM acct b
    {match}
    WHERE b.user_id IS NULL
    ) x
),
who AS MATERIALIZED (
    SELECT b.row_id, b.external_id, coalesce(b.user_id, n.user_id) AS user_id, b.user_id IS NULL AS new_link,
           b.app_status, b.email, b.email_verified, b.first_name, b.last_name, b.site_admin
    FROM acct b LEFT JOIN unlinked n ON n.row_id = b.row_id
    WHERE coalesce(b.user_id, n.user_id) IS NOT NULL
),
-- state.diff_members
want AS (
    SELECT b.user_id, d.external_id, d.org, d.role_id, d.all_facilities
    FROM who b JOIN member d ON d.external_id = b.external_id
    WHERE d.role_id IS NOT NULL
),
have AS (
    SELECT m.user_id, o.external_id AS org, m.org_id, m.role_id, m.all_facilities, m.created_at, m.updated_at
    FROM who b
    JOIN org_user m ON m.user_id = b.user_id
    JOIN org o ON o.id = m.org_id
    WHERE o.external_id IN (SELECT org_external_id FROM managed)
),
member_diff AS MATERIALIZED (
    SELECT d.user_id, d.org, d.kind, d.role_from, d.role_to, d.all_from, d.all_to, {app_edit:d} AS app_edit
    FROM (
        SELECT coalesce(w.user_id, h.user_id) AS user_id, coalesce(w.org, h.org) AS org, h.org_id,
               CASE WHEN h.user_id IS NULL THEN 'add' WHEN w.user_id IS NULL THEN 'remove' ELSE 'change' END AS kind,
               h.role_id AS role_from, w.role_id AS role_to, h.all_facilities AS all_from, w.all_facilities AS all_to,
               h.created_at, h.updated_at
        FROM want w
        FULL JOIN have h ON h.user_id = w.user_id AND h.org = w.org
        WHERE h.user_id IS NULL OR w.user_id IS NULL
           OR (h.role_id, h.all_facilities) IS DISTINCT FROM (w.role_id, w.all_facilities)
    ) d
    LEFT JOIN orgmig_identity_undo x ON x.table_name = 'org_user' AND x.row_key = d.org_id || '|' || d.user_id
),
-- state.diff_facilities
want_facility AS (
    SELECT w.user_id, w.org, x.facility_id
    FROM want w JOIN words x ON x.external_id = w.external_id AND x.org = w.org
    WHERE NOT w.all_facilities AND x.word = 'FACILITY'
    GROUP BY w.user_id, w.org, x.facility_id
),
have_facility AS (
    SELECT f.user_id, o.external_id AS org, f.org_id, f.facility_id, f.created_at
    FROM who b
    JOIN org_user_facility f ON f.user_id = b.user_id
    JOIN org o ON o.id = f.org_id
    WHERE o.external_id IN (SELECT org_external_id FROM managed)
),
facility_diff AS MATERIALIZED (
    SELECT d.user_id, d.org, d.facility_id, d.kind, {access_app_edit:d} AS app_edit
    FROM (
        SELECT coalesce(w.user_id, h.user_id) AS user_id, coalesce(w.org, h.org) AS org, h.org_id,
               coalesce(w.facility_id, h.facility_id) AS facility_id,
               CASE WHEN h.user_id IS NULL THEN 'add' ELSE 'remove' END AS kind, h.created_at
        FROM want_facility w
        FULL JOIN have_facility h ON h.user_id = w.user_id AND h.org = w.org AND h.facility_id = w.facility_id
        WHERE (h.user_id IS NULL OR w.user_id IS NULL)
          -- access of a membership whose change is the app's edit is left alone; a hashed NOT IN
          -- (an anti join with a CTE, whose size the planner cannot know, may become a nested loop
          -- over it)
          AND (coalesce(w.user_id, h.user_id), coalesce(w.org, h.org))
              NOT IN (SELECT m.user_id, m.org FROM member_diff m WHERE m.app_edit)
    ) d
    LEFT JOIN orgmig_identity_undo x
           ON x.table_name = 'org_user_facility' AND x.row_key = d.org_id || '|' || d.user_id || '|' || d.facility_id
),
-- state.diff_users: every difference, and the provider that owns the user's values
user_diff_all AS MATERIALIZED (
    SELECT d.user_id, d.columns, d.app_status, d.site_admin, d.status, d.is_site_admin, {app_edit:d} AS app_edit,
           d.owner
    FROM (
        SELECT u.id AS user_id, c.cols AS columns, b.app_status, b.site_admin, u.status, u.is_site_admin,
               u.created_at, u.updated_at, {owner} AS owner
        FROM who b
        JOIN "user" u ON u.id = b.user_id
        {user_columns}
        WHERE cardinality(c.cols) > 0
    ) d
    -- (the undo rows of the users that differ only)
    LEFT JOIN orgmig_identity_undo x ON x.table_name = 'user' AND x.row_key = d.user_id::text
),
-- the differences this provider applies (it owns the user's values); the others are reported
user_diff AS (SELECT * FROM user_diff_all WHERE owner = :provider)

-- name: drift
-- Per user, what differs between the tables and the latest finished snapshot (`orgmig
-- reconcile`), ordered by the account's external id.
{chain}
-- each part aggregated per user once (a correlated subquery over a CTE would scan it per user:
-- quadratic when every account drifts, before the first sync)
, drift_orgs AS (
    SELECT d.user_id,
           jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'org', d.org, 'change', d.kind, 'role', rf.name, 'idp_role', rt.name,
               'all_facilities', CASE WHEN d.all_from IS DISTINCT FROM d.all_to THEN d.all_from END,
               'idp_all_facilities', CASE WHEN d.all_from IS DISTINCT FROM d.all_to THEN d.all_to END))
               ORDER BY d.org) AS orgs
    FROM member_diff d
    LEFT JOIN roles rf ON rf.id = d.role_from LEFT JOIN roles rt ON rt.id = d.role_to
    WHERE NOT d.app_edit
    GROUP BY d.user_id
),
drift_facilities AS (
    SELECT f.user_id,
           jsonb_agg(jsonb_build_object('org', f.org, 'facility', f.facility_id, 'change', f.kind)
                     ORDER BY f.org, f.facility_id) AS facilities
    FROM facility_diff f
    WHERE NOT f.app_edit
    GROUP BY f.user_id
),
drift_users AS (
    SELECT d.user_id,
           CASE WHEN 'status' = ANY (d.columns)
                THEN jsonb_build_object('status', d.status, 'idp_status', d.app_status) END AS status,
           CASE WHEN 'is_site_admin' = ANY (d.columns)
                THEN jsonb_build_object('site_admin', d.is_site_admin, 'idp_site_admin', d.site_admin) END AS site_admin,
           CASE WHEN cardinality(array_remove(array_remove(d.columns, 'status'), 'is_site_admin')) > 0
                THEN to_jsonb(array_remove(array_remove(d.columns, 'status'), 'is_site_admin')) END AS profile
    FROM user_diff d
    WHERE NOT d.app_edit
)
SELECT b.external_id, b.row_id,
       CASE WHEN b.user_id > 0 THEN b.user_id END AS user_id,
       CASE WHEN b.new_link AND b.user_id < 0 THEN 'user to create'
            WHEN b.new_link THEN 'link to make' END AS link,
       o.orgs, f.facilities, u.status, u.site_admin, u.profile
FROM who b
LEFT JOIN drift_orgs o ON o.user_id = b.user_id
LEFT JOIN drift_facilities f ON f.user_id = b.user_id
LEFT JOIN drift_users u ON u.user_id = b.user_id
WHERE b.new_link OR o.user_id IS NOT NULL OR f.user_id IS NOT NULL OR u.user_id IS NOT NULL
ORDER BY b.external_id;

-- name: work
-- A CTE after {chain}: the accounts a run has work for (a link to make, a user to create, a
-- membership, a facility access or a profile value to write, or something to report).
work AS MATERIALIZED (
    SELECT b.row_id
    FROM acct b LEFT JOIN unlinked n ON n.row_id = b.row_id
    WHERE n.user_id IS NOT NULL OR n.problem IS NOT NULL
       OR coalesce(b.user_id, n.user_id) IN (SELECT d.user_id FROM member_diff d
                                             UNION SELECT f.user_id FROM facility_diff f
                                             UNION SELECT u.user_id FROM user_diff_all u)
       OR b.external_id IN (SELECT d.external_id FROM member d WHERE d.problem IS NOT NULL)
)

-- name: plan
-- The plan of a sync (after plan.classify ... plan.create_facilities): the desired state of the
-- accounts the run has work for to the plan's tables (keep; its accounts are the keys the run
-- walks), and the counts the run logs and the mass-change guard reads.
{chain},
{work},
{keep},
losing AS (
    SELECT d.user_id, 'disabled' AS loses FROM user_diff d JOIN who b ON b.user_id = d.user_id
    WHERE NOT d.app_edit AND NOT b.new_link AND 'status' = ANY (d.columns) AND d.app_status = 'disabled'
    UNION ALL
    SELECT m.user_id, 'memberships' FROM member_diff m JOIN who b ON b.user_id = m.user_id
    WHERE m.kind = 'remove' AND NOT m.app_edit AND NOT b.new_link
    UNION ALL
    SELECT d.user_id, 'site_admin' FROM user_diff d JOIN who b ON b.user_id = d.user_id
    WHERE NOT d.app_edit AND NOT b.new_link AND 'is_site_admin' = ANY (d.columns) AND NOT d.site_admin
)
SELECT
    (SELECT count(*) FROM acct) AS accounts,
    (SELECT count(*) FROM acct WHERE user_id IS NOT NULL) AS linked,
    (SELECT count(*) FROM unlinked WHERE matched) AS links_created,
    (SELECT count(*) FROM unlinked WHERE user_id < 0) AS users_created,
    (SELECT count(*) FROM member_diff WHERE kind = 'add' AND NOT app_edit) AS memberships_added,
    (SELECT count(*) FROM member_diff WHERE kind = 'change' AND NOT app_edit) AS memberships_changed,
    (SELECT count(*) FROM member_diff WHERE kind = 'remove' AND NOT app_edit) AS memberships_removed,
    (SELECT count(*) FROM facility_diff WHERE kind = 'add' AND NOT app_edit) AS facilities_added,
    (SELECT count(*) FROM facility_diff WHERE kind = 'remove' AND NOT app_edit) AS facilities_removed,
    (SELECT count(*) FROM user_diff WHERE 'status' = ANY (columns) AND NOT app_edit) AS status_changes,
    (SELECT count(*) FROM user_diff WHERE NOT app_edit) AS users_changed,
    (SELECT count(DISTINCT user_id) FROM losing WHERE loses = 'disabled') AS disabled,
    (SELECT count(DISTINCT user_id) FROM losing WHERE loses = 'memberships') AS losing_memberships,
    (SELECT count(DISTINCT user_id) FROM losing WHERE loses = 'site_admin') AS losing_site_admin,
    (SELECT count(DISTINCT user_id) FROM losing) AS mass_changed,
    (SELECT count(*) FROM work) AS todo,
    -- `orgmig sync --dry-run` only (:reports; skipped otherwise): what the batches and the finish
    -- would report, by reason (the group reports are in orgmig_report already, from the plan)
    CASE WHEN :reports THEN (
        SELECT coalesce(jsonb_object_agg(r.reason, r.n), '{}'::jsonb)
        FROM (SELECT x.reason, count(*) AS n FROM (
            SELECT n.problem AS reason FROM unlinked n WHERE n.problem IS NOT NULL
            UNION ALL
            SELECT m.problem FROM (SELECT DISTINCT d.external_id, d.problem FROM member d
                                   WHERE d.problem IS NOT NULL) m
            UNION ALL
            SELECT 'provider_conflict' FROM user_diff_all WHERE owner <> :provider
            UNION ALL
            SELECT 'app_edit_newer' FROM (SELECT user_id FROM user_diff WHERE app_edit
                                          UNION SELECT user_id FROM member_diff WHERE app_edit
                                          UNION SELECT user_id FROM facility_diff WHERE app_edit) e
            UNION ALL
            -- finish.report_app_users, once the run has made its links
            SELECT 'app_user_without_idp_account' FROM "user" u
            LEFT JOIN user_identity i ON i.provider = :provider AND i.user_id = u.id
            WHERE (i.user_id IS NULL OR NOT EXISTS (SELECT 1 FROM idp_user x
                                                    WHERE x.provider = :provider AND x.external_id = i.external_id))
              AND u.id NOT IN (SELECT w.user_id FROM who w WHERE w.new_link)
        ) x GROUP BY x.reason) r
    ) END AS reported;

-- name: keep
-- CTEs after {chain} and {work} (the row_id of each account the run has work for): the desired
-- state of those accounts, computed once by the plan and kept for the run's batches
-- (state.load_users, state.load_desired read their range of it) in UNLOGGED tables
-- (plan.plan_tables): the account's values and its match (the user it is linked to or matched,
-- how, or the match's problem), and per org the membership the IdP gives. Orgs by their id (the
-- plan created those missing).
kept AS (
    INSERT INTO orgmig_identity_plan (provider, row_id, external_id, email, email_norm, email_verified,
                                      app_status, first_name, last_name, site_admin, linked, user_id,
                                      matched_by, problem, detail)
    SELECT :provider, b.row_id, b.external_id, b.email, b.email_norm, b.email_verified, b.app_status,
           b.first_name, b.last_name, b.site_admin, b.user_id IS NOT NULL,
           coalesce(b.user_id, n.matched_user_id), n.matched_by, n.match_problem, n.detail
    FROM work t
    JOIN acct b ON b.row_id = t.row_id
    LEFT JOIN unlinked n ON n.row_id = b.row_id
    RETURNING 1
),
kept_members AS (
    INSERT INTO orgmig_identity_plan_member (provider, row_id, org_id, org_external_id, role_id, all_facilities,
                                             facility_ids, problem, detail)
    SELECT :provider, b.row_id, o.id, d.org, d.role_id, d.all_facilities, coalesce(d.facility_ids, '{}'),
           d.problem,
           CASE WHEN d.problem IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
               'org', d.org,
               'roles', (SELECT to_jsonb(array_agg(DISTINCT r.name)) FROM unnest(d.unknown_roles) r(name)))) END
    FROM work t
    JOIN acct b ON b.row_id = t.row_id
    JOIN member d ON d.external_id = b.external_id
    JOIN org o ON o.external_id = d.org
    RETURNING 1
)

-- name: refill
-- The plan's tables filled again (a run resumed after the server restarted, which empties
-- UNLOGGED tables, or whose plan another run replaced): the accounts with work now and their
-- desired state, by the plan's comparison, matched as the batches match (:run_id: the users this
-- run linked or created are as the plan saw them). What the run's finished batches applied has no
-- work left; the accounts of its remaining ranges are planned again with the same rules.
{chain},
{work},
{keep}
SELECT (SELECT count(*) FROM kept) AS accounts, (SELECT count(*) FROM kept_members) AS memberships;
