-- Step user_settings_to_org: the application's rows that hang on rows the upgrade created, for
-- the links of legacy rows :start..:end, counted by kind; with :delete true they are deleted too
-- (memberships and settings) or detached (a user's current org). The downgrade's guard counts
-- them over every link and refuses while any exist; `-x allow_data_loss=true` makes each
-- downgrade batch delete them over its own links. One statement, so the guard and the delete
-- can never disagree about what "depends" means.
WITH l AS MATERIALIZED (
    SELECT * FROM orgmig_user_settings_link WHERE user_settings_id BETWEEN :start AND :end
      AND (CAST(:ids AS integer[]) IS NULL OR user_settings_id = ANY (CAST(:ids AS integer[])))
),
members_in_orgs AS MATERIALIZED (
    -- memberships in a personal org the upgrade created, other than the one it created
    SELECT m.org_id, m.user_id FROM org_user m JOIN l ON m.org_id = l.org_id
    WHERE l.created_org AND NOT (m.user_id = l.user_id AND l.created_org_user)
),
members_of_users AS MATERIALIZED (
    -- memberships of a user the upgrade created, in other orgs
    SELECT m.org_id, m.user_id FROM org_user m JOIN l ON m.user_id = l.user_id
    WHERE l.created_user AND m.org_id <> l.org_id
),
settings_of_orgs AS MATERIALIZED (
    -- a settings row of a personal org the upgrade created that the upgrade did not write
    SELECT x.id FROM settings x JOIN l ON x.org_id = l.org_id
    WHERE l.created_org AND NOT l.created_settings
),
settings_of_users AS MATERIALIZED (
    -- a user's own settings row, for a user the upgrade created
    SELECT x.id FROM settings x JOIN l ON x.user_id = l.user_id WHERE l.created_user
),
current_orgs AS MATERIALIZED (
    -- users the upgrade did not create whose current org is one it created (and did not set)
    SELECT u.id FROM "user" u
    WHERE u.current_org_id IN (SELECT org_id FROM l WHERE created_org)
      AND u.id NOT IN (SELECT user_id FROM l WHERE created_user)
      AND NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link f
                      WHERE f.user_id = u.id AND 'current_org_id' = ANY (f.filled_user_columns))
),
del_settings AS (
    DELETE FROM settings x
    WHERE :delete AND x.id IN (SELECT id FROM settings_of_orgs UNION SELECT id FROM settings_of_users)
    RETURNING 1
),
del_members AS (
    DELETE FROM org_user m
    WHERE :delete AND (m.org_id, m.user_id) IN (SELECT org_id, user_id FROM members_in_orgs
                                                UNION SELECT org_id, user_id FROM members_of_users)
    RETURNING 1
),
detach AS (
    UPDATE "user" u SET current_org_id = NULL, updated_at = now()
    WHERE :delete AND u.id IN (SELECT id FROM current_orgs)
    RETURNING 1
)
SELECT (SELECT count(*) FROM members_in_orgs) AS "org_user rows in migrated personal orgs",
       (SELECT count(*) FROM members_of_users) AS "org_user rows of migrated users in other orgs",
       (SELECT count(*) FROM settings_of_orgs) AS "settings rows of migrated personal orgs",
       (SELECT count(*) FROM settings_of_users) AS "settings rows of migrated users",
       (SELECT count(*) FROM current_orgs) AS "users whose current org is a migrated personal org",
       (SELECT count(*) FROM del_settings) + (SELECT count(*) FROM del_members)
     + (SELECT count(*) FROM detach) AS written
