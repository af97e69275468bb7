-- Step identity:<provider>, one batch: the desired state of the accounts of its key range, as
-- the plan computed and kept it (compare.keep), and how the tables differ from it, in temporary
-- tables (one set per connection, emptied at each commit), which the batch's writes (apply.sql)
-- read. The desired state comes from the snapshot, which a run does not change; the tables'
-- side is read here, inside the batch's transaction, after its rows are locked, so that a batch
-- sees an app edit made after the plan (the diffs and their app-edit rule). A match the tables
-- may have overtaken since the plan (the account linked meanwhile, its user linked to another
-- account or gone, an app user now holding the email of an account planned to get a new user)
-- is made again here. The rules are rules.sql's, which compare.sql expands too (the plan,
-- `--dry-run` and `orgmig reconcile`), and the login endpoint runs `match` for one account.

-- name: temp_tables
-- The batch's accounts and their memberships, as the plan kept them (rules.account_state,
-- rules.membership_state), with what the batch decides of its own: whether it links the account
-- now, and whether it matches it again.
CREATE TEMP TABLE IF NOT EXISTS batch_account (
    row_id bigint PRIMARY KEY,
    {account_state},
    new_link boolean NOT NULL DEFAULT false,
    recheck boolean NOT NULL DEFAULT true
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS batch_desired_membership (
    external_id text NOT NULL,
    {membership_state},
    PRIMARY KEY (external_id, org_id)
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS batch_membership_diff (
    user_id integer NOT NULL,
    org_id uuid NOT NULL,
    kind text NOT NULL,
    role_from integer,
    role_to integer,
    all_from boolean,
    all_to boolean,
    app_edit boolean NOT NULL,
    before jsonb,
    PRIMARY KEY (user_id, org_id)
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS batch_facility_diff (
    user_id integer NOT NULL,
    org_id uuid NOT NULL,
    facility_id uuid NOT NULL,
    kind text NOT NULL,
    app_edit boolean NOT NULL,
    PRIMARY KEY (user_id, org_id, facility_id)
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS batch_user_diff (
    user_id integer PRIMARY KEY,
    columns text[] NOT NULL,
    status_to text,
    app_edit boolean NOT NULL,
    owner text NOT NULL,
    before jsonb NOT NULL
) ON COMMIT DELETE ROWS;

-- name: load_users
-- The accounts of :provider with row_id in :start..:end that the plan kept (compare.keep): their
-- values, whether they are site admins, and their link, probed again (user_identity's primary
-- key: the login endpoint may have linked the account since the plan). The plan's match stands
-- unless the tables overtook it (`recheck`, then `match` runs for the account): the account was
-- linked at the plan and is not now; the user it matched is gone or linked to another account
-- of the provider; it matched nobody, and an app user now holds its email, or (matching by
-- subject) its subject. (OFFSET 0 keeps `recheck` one evaluation per account: flattened, each of
-- the six uses of it probed the tables again.)
INSERT INTO batch_account (row_id, external_id, email, email_norm, email_verified, app_status, first_name,
                           last_name, site_admin, user_id, matched_by, new_link, problem, detail, recheck)
SELECT p.row_id, p.external_id, p.email, p.email_norm, p.email_verified, p.app_status, p.first_name,
       p.last_name, p.site_admin,
       coalesce(i.user_id, CASE WHEN NOT r.recheck THEN p.user_id END),
       coalesce(i.matched_by, CASE WHEN NOT r.recheck THEN p.matched_by END),
       i.user_id IS NULL AND NOT r.recheck AND p.user_id IS NOT NULL,
       CASE WHEN i.user_id IS NULL AND NOT r.recheck THEN p.problem END,
       CASE WHEN i.user_id IS NULL AND NOT r.recheck THEN p.detail END,
       r.recheck
FROM orgmig_identity_plan p
LEFT JOIN LATERAL (SELECT i.user_id, i.matched_by FROM user_identity i
                   WHERE i.provider = p.provider AND i.external_id = p.external_id OFFSET 0) i ON true
CROSS JOIN LATERAL (
    SELECT i.user_id IS NULL AND CASE
        WHEN p.linked THEN true
        WHEN p.user_id IS NOT NULL THEN
            NOT EXISTS (SELECT 1 FROM "user" u WHERE u.id = p.user_id)
            OR EXISTS (SELECT 1 FROM user_identity j WHERE j.provider = p.provider AND j.user_id = p.user_id)
            OR (:matches_by_subject AND p.matched_by = 'email'
                AND EXISTS (SELECT 1 FROM "user" u WHERE u.keycloak_user_id = p.external_id))
        ELSE
            (p.email_norm IS NOT NULL
             AND EXISTS (SELECT 1 FROM "user" u WHERE lower(btrim(u.email)) = p.email_norm))
            OR (:matches_by_subject AND EXISTS (SELECT 1 FROM "user" u WHERE u.keycloak_user_id = p.external_id))
        END AS recheck
    OFFSET 0
) r
WHERE p.provider = :provider AND p.row_id BETWEEN :start AND :end;

-- name: load_desired
-- Per account and org, the membership the plan kept (compare.keep, rules.role_words and
-- rules.membership over the snapshot): the highest-privilege role the IdP gives, whether it
-- covers all facilities, the facilities it grants one by one, and its problem; in orgs that
-- still exist.
INSERT INTO batch_desired_membership (external_id, org_id, org_external_id, role_id, all_facilities, problem,
                                      facility_ids, detail)
-- (The batch's range of the kept memberships read by their primary key, each probing the batch's
-- accounts: the plan's tables have no statistics, and driven the other way round the planner
-- read every kept membership in each batch.)
SELECT b.external_id, d.org_id, d.org_external_id, d.role_id, d.all_facilities, d.problem, d.facility_ids, d.detail
FROM orgmig_identity_plan_member d
JOIN batch_account b ON b.row_id = d.row_id
WHERE d.provider = :provider AND d.row_id BETWEEN :start AND :end
  AND EXISTS (SELECT 1 FROM org o WHERE o.id = d.org_id);

-- name: match
-- Which app user each unlinked account is (rules.match), for the accounts whose match the batch
-- makes again (load_users' `recheck`; the login endpoint's one account). Anything else is a
-- problem, never a guess.
UPDATE batch_account b SET user_id = m.user_id, matched_by = m.matched_by, new_link = m.user_id IS NOT NULL,
                      problem = m.problem, detail = m.detail
FROM (
    SELECT b.row_id, mt.user_id, mt.matched_by, mt.problem, mt.detail
    FROM batch_account b
    {match}
    WHERE b.user_id IS NULL AND b.recheck
) m
WHERE b.row_id = m.row_id;

-- name: lock_rows
-- The batch's users and their memberships, locked before anything is compared: the decision
-- whether a row is the app's edit (diff_*) and the write (apply.sql) are then one step. An
-- application transaction that holds one of these rows is waited for, and the comparison that
-- follows (a new statement, a new snapshot) sees its edit once it commits, so that edit is kept
-- and reported app_edit_newer rather than overwritten by a decision made before it. The users in
-- id order, then the memberships in key order, so two batches never wait for each other in a
-- circle. "user" rows NO KEY (the application may go on adding rows that reference them);
-- memberships FOR UPDATE (a batch may delete them, and their facility access with them). A user
-- the batch created (apply.create_users: a new link, matched_by 'created') is seen by no other
-- transaction before the batch commits, and has no membership yet: not locked (a lock would
-- write its row and WAL again for nothing).
WITH users AS MATERIALIZED (
    SELECT u.id FROM "user" u
    WHERE u.id IN (SELECT b.user_id FROM batch_account b
                   WHERE b.user_id IS NOT NULL AND NOT (b.new_link AND b.matched_by = 'created'))
    ORDER BY u.id
    FOR NO KEY UPDATE OF u
),
members AS MATERIALIZED (
    SELECT m.org_id FROM org_user m
    WHERE m.user_id IN (SELECT id FROM users)
    ORDER BY m.org_id, m.user_id
    FOR UPDATE OF m
)
SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM members) AS members;

-- name: diff_members
-- Memberships in the orgs the IdP manages (those its valid groups and organizations name) that
-- differ from what it gives: to add, to change (role or all-facilities), to remove. Personal orgs
-- and every other org are never touched.
INSERT INTO batch_membership_diff (user_id, org_id, kind, role_from, role_to, all_from, all_to, app_edit, before)
WITH grp AS NOT MATERIALIZED (SELECT * FROM orgmig_identity_group WHERE provider = :provider),
want AS (
    SELECT b.user_id, d.org_id, d.role_id, d.all_facilities
    FROM batch_account b JOIN batch_desired_membership d ON d.external_id = b.external_id
    WHERE b.user_id IS NOT NULL AND d.role_id IS NOT NULL
),
-- The memberships of these accounts, found by user_id first (MATERIALIZED keeps that order: a
-- run fills org_user, and without statistics for it the planner would pair every managed org
-- with every account of a batch and probe the primary key for each pair).
mine AS MATERIALIZED (
    SELECT m.* FROM batch_account b JOIN org_user m ON m.user_id = b.user_id
),
-- The managed orgs, read only when these accounts have a membership at all (all the provider's
-- group meanings are read to find them: 13 ms a batch at 18,000 groups, for nothing on a first
-- sync, whose new users have none).
managed AS MATERIALIZED (
    SELECT o.id FROM org o
    WHERE o.external_id IN ({managed_orgs}) AND EXISTS (SELECT 1 FROM mine)
),
have AS (
    SELECT m.org_id, m.user_id, m.role_id, m.status, m.all_facilities, m.created_at, m.updated_at,
           {app_edit:m} AS app_edit
    FROM mine m
    LEFT JOIN orgmig_identity_undo x ON x.table_name = 'org_user' AND x.row_key = m.org_id || '|' || m.user_id
    WHERE m.org_id IN (SELECT id FROM managed)
)
SELECT coalesce(w.user_id, h.user_id), coalesce(w.org_id, h.org_id),
       CASE WHEN h.org_id IS NULL THEN 'add' WHEN w.org_id IS NULL THEN 'remove' ELSE 'change' END,
       h.role_id, w.role_id, h.all_facilities, w.all_facilities,
       coalesce(h.app_edit, false),
       CASE WHEN h.org_id IS NOT NULL THEN jsonb_build_object(
           'role_id', h.role_id, 'status', h.status, 'all_facilities', h.all_facilities,
           'created_at', h.created_at, 'updated_at', h.updated_at) END
FROM want w
FULL JOIN have h ON h.user_id = w.user_id AND h.org_id = w.org_id
WHERE h.org_id IS NULL OR w.org_id IS NULL
   OR (h.role_id, h.all_facilities) IS DISTINCT FROM (w.role_id, w.all_facilities);

-- name: diff_facilities
-- Facility access (org_user_facility) in managed orgs that differs from what the IdP grants:
-- facilities one by one where the member has neither ADMIN nor ALL_FACILITIES, none otherwise.
-- A row the app added after the export started is the app's edit; access of a membership whose
-- change is the app's edit is left alone.
INSERT INTO batch_facility_diff (user_id, org_id, facility_id, kind, app_edit)
-- (want: each account's members by batch_desired_membership's primary key, OFFSET 0 keeping the LATERAL a probe
-- per account: the temporary tables have no statistics in a batch, and the planner compared every
-- account with every member row of the batch, 15 ms of each batch)
WITH grp AS NOT MATERIALIZED (SELECT * FROM orgmig_identity_group WHERE provider = :provider),
want AS (
    SELECT b.user_id, d.org_id, f.id AS facility_id
    FROM batch_account b
    CROSS JOIN LATERAL (SELECT d.org_id, d.facility_ids FROM batch_desired_membership d
                        WHERE d.external_id = b.external_id AND d.role_id IS NOT NULL AND NOT d.all_facilities
                        OFFSET 0) d
    JOIN facility f ON f.id = ANY (d.facility_ids) AND f.org_id = d.org_id
    WHERE b.user_id IS NOT NULL
),
-- The access rows of these accounts, through their memberships (org_user has an index on
-- user_id, org_user_facility none that starts with it; every access row has its membership),
-- MATERIALIZED for the reason given in diff_members.
mine AS MATERIALIZED (
    SELECT f.* FROM batch_account b
    JOIN org_user m ON m.user_id = b.user_id
    JOIN org_user_facility f ON f.org_id = m.org_id AND f.user_id = m.user_id
),
-- the managed orgs, read only when these accounts have access rows (as in diff_members)
managed AS MATERIALIZED (
    SELECT o.id FROM org o
    WHERE o.external_id IN ({managed_orgs}) AND EXISTS (SELECT 1 FROM mine)
),
have AS (
    SELECT f.org_id, f.user_id, f.facility_id, {access_app_edit:f} AS app_edit
    FROM mine f
    LEFT JOIN orgmig_identity_undo x
           ON x.table_name = 'org_user_facility' AND x.row_key = f.org_id || '|' || f.user_id || '|' || f.facility_id
    WHERE f.org_id IN (SELECT id FROM managed)
)
SELECT coalesce(w.user_id, h.user_id), coalesce(w.org_id, h.org_id), coalesce(w.facility_id, h.facility_id),
       CASE WHEN h.facility_id IS NULL THEN 'add' ELSE 'remove' END,
       coalesce(h.app_edit, false)
FROM want w
FULL JOIN have h ON h.user_id = w.user_id AND h.org_id = w.org_id AND h.facility_id = w.facility_id
WHERE (h.facility_id IS NULL OR w.facility_id IS NULL)
  AND NOT EXISTS (SELECT 1 FROM batch_membership_diff m
                  WHERE m.user_id = coalesce(w.user_id, h.user_id) AND m.org_id = coalesce(w.org_id, h.org_id)
                    AND m.app_edit);

-- name: diff_users
-- Profile values, status and the site-admin flag of linked users that differ from the IdP's
-- (rules.user_columns). `owner`: the provider whose values the user carries when accounts of
-- several providers are linked to it (rules.owner). Only the owner's differences are applied; the
-- others are reported provider_conflict. A user the batch created holds the account's values
-- (apply.create_users) and no other provider's link: not compared.
INSERT INTO batch_user_diff (user_id, columns, status_to, app_edit, owner, before)
SELECT u.id, c.cols, b.app_status, {app_edit:u}, {owner},
       jsonb_build_object('status', u.status, 'email', u.email, 'email_verified', u.email_verified,
                          'first_name', u.first_name, 'last_name', u.last_name,
                          'is_site_admin', u.is_site_admin, 'updated_at', u.updated_at)
FROM batch_account b
JOIN "user" u ON u.id = b.user_id
LEFT JOIN orgmig_identity_undo x ON x.table_name = 'user' AND x.row_key = u.id::text
{user_columns}
WHERE cardinality(c.cols) > 0 AND NOT (b.new_link AND b.matched_by = 'created');
