-- Step user_settings_to_org, upgrade: the legacy rows with ids :start..:end into the org schema,
-- in one statement (:ids NULL; the login path gives the ids of one keycloak_user_id's rows, and
-- gets the link of the highest of them, the winner, as winner_user_id and winner_org_id).
-- Parameters: :start, :end, :ids, :max_key (the run's last key), :run_id, :step,
-- :user_id_sequence (the identity sequence behind "user".id), :lookups. {settings_columns} is the
-- list of user_settings columns a settings row carries (all but id and keycloak_user_id).
--
-- :lookups false leaves out the lookups of a link, personal org and user that exist already (the
-- engine's batches while the run is alone on its database): every row they could find would
-- make one of the inserts below raise a unique violation (the link's primary key, org.name,
-- "user".keycloak_user_id, "user".legacy_user_settings_id), so the statement either writes what
-- it would have written with them or fails whole, and the caller runs it again with them. The
-- parameter is a constant when the statement is planned (never server-side prepared): the
-- planner leaves the index probes out of the plan.
--
-- The batch runs with TimeZone = 'UTC': a naive legacy timestamp (holding UTC) converts to
-- timestamptz as UTC, and a timestamptz legacy column keeps its instant, whatever the server's
-- or the session's time zone.
--
-- Joins between CTEs are estimated badly (a data-modifying CTE "returns" one row to the
-- planner), so every lookup below goes to a real table through an index, and each existence
-- test reads the statement's snapshot: the state before this batch wrote anything. Inserts
-- carry no ON CONFLICT clause (its arbiter probes cost a tenth of the batch): a row a
-- concurrent writer inserted meanwhile raises a unique violation, and the engine retries the
-- batch, which then finds that row and links it. The final SELECT returns expected and actual
-- counts as a second guard.
WITH rng AS MATERIALIZED (
    SELECT us.id, us.keycloak_user_id,
           -- valid: holds a character other than white space
           us.keycloak_user_id ~ '[^[:space:]]' AS id_valid,
           -- Only for valid ids: thousands of rows may share '' or a blank id. "+ 0" keeps the
           -- planner off a backward primary-key scan (O(table) per row); the keycloak_user_id
           -- index finds the few rows sharing an id.
           CASE WHEN us.keycloak_user_id ~ '[^[:space:]]' THEN
               (SELECT max(w.id + 0) FROM user_settings w
                 WHERE w.keycloak_user_id = us.keycloak_user_id AND w.id <= :max_key)
           END AS winner_id
    FROM user_settings us
    WHERE us.id BETWEEN :start AND :end
      AND (CAST(:ids AS integer[]) IS NULL OR us.id = ANY (CAST(:ids AS integer[])))
),
skipped AS (
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
    SELECT :step, 'user_settings', r.id,
           CASE WHEN r.id_valid IS NOT TRUE THEN 'missing_keycloak_user_id'
                ELSE 'duplicate_keycloak_user_id' END,
           false,
           CASE WHEN r.keycloak_user_id IS NULL THEN jsonb_build_object('keycloak_user_id', 'NULL')
                WHEN r.keycloak_user_id = '' THEN jsonb_build_object('keycloak_user_id', 'empty')
                WHEN r.id_valid IS NOT TRUE THEN jsonb_build_object('keycloak_user_id', 'blank')
                ELSE jsonb_build_object('winner_id', r.winner_id, 'keycloak_user_id', r.keycloak_user_id) END,
           :run_id
    FROM rng r
    WHERE r.id_valid IS NOT TRUE OR r.winner_id <> r.id
    ON CONFLICT (step, source_table, source_id, reason) DO NOTHING
    RETURNING 1
),
src AS MATERIALIZED (
    -- One row per winner, with everything the inserts need: the legacy columns, the existing
    -- user and personal org (looked up through their unique indexes), the ids to use (a new
    -- time-ordered org id, a user id drawn from the identity sequence) and, for rows the
    -- application already has, what exists, which user columns to fill (never overwrite) and
    -- which differ. Every later CTE reads only this.
    SELECT x.*,
           x.old_user_id IS NULL AS created_user,
           x.old_org_id IS NULL AS created_org,
           x.old_role_id IS NULL AS created_member,
           NOT x.settings_existed AS created_settings,
           CASE WHEN x.old_user_id IS NULL THEN '{}'::text[] ELSE array_remove(ARRAY[
                CASE WHEN x.ou_email IS NULL AND x.email IS NOT NULL THEN 'email' END,
                CASE WHEN x.ou_email_verified IS NULL AND x.email_verified IS NOT NULL
                     THEN 'email_verified' END,
                CASE WHEN x.ou_accepted_tos IS NULL AND x.accepted_tos IS NOT NULL
                     THEN 'accepted_tos' END,
                CASE WHEN x.ou_enable_sound_notifications IS NULL
                      AND x.enable_sound_notifications IS NOT NULL
                     THEN 'enable_sound_notifications' END,
                CASE WHEN x.ou_legacy_user_settings_id IS NULL AND NOT EXISTS (
                         SELECT 1 FROM "user" y WHERE y.legacy_user_settings_id = x.id)
                     THEN 'legacy_user_settings_id' END,
                CASE WHEN x.ou_current_org_id IS NULL THEN 'current_org_id' END
           ]::text[], NULL) END AS fill_cols,
           CASE WHEN x.old_user_id IS NULL THEN '{}'::text[] ELSE array_remove(ARRAY[
                CASE WHEN x.ou_email IS DISTINCT FROM x.email
                      AND x.ou_email IS NOT NULL AND x.email IS NOT NULL THEN 'email' END,
                CASE WHEN x.ou_email_verified IS DISTINCT FROM x.email_verified
                      AND x.ou_email_verified IS NOT NULL AND x.email_verified IS NOT NULL
                     THEN 'email_verified' END,
                CASE WHEN x.ou_accepted_tos IS DISTINCT FROM CAST(x.accepted_tos AS timestamptz)
                      AND x.ou_accepted_tos IS NOT NULL AND x.accepted_tos IS NOT NULL
                     THEN 'accepted_tos' END,
                CASE WHEN x.ou_enable_sound_notifications IS DISTINCT FROM x.enable_sound_notifications
                      AND x.ou_enable_sound_notifications IS NOT NULL
                      AND x.enable_sound_notifications IS NOT NULL
                     THEN 'enable_sound_notifications' END
           ]::text[], NULL) END AS user_diff_cols
    FROM (
        SELECT s.*, ou.id AS ou_id, ou.email AS ou_email, ou.email_verified AS ou_email_verified,
               ou.accepted_tos AS ou_accepted_tos,
               ou.enable_sound_notifications AS ou_enable_sound_notifications,
               ou.legacy_user_settings_id AS ou_legacy_user_settings_id,
               ou.current_org_id AS ou_current_org_id,
               m.role_id AS old_role_id,
               m.status AS old_status,
               s.old_org_id IS NOT NULL
                   AND EXISTS (SELECT 1 FROM settings x WHERE x.org_id = s.old_org_id) AS settings_existed
        FROM (
            SELECT us.*,
                   'user_' || us.id || '_org' AS org_name,
                   o.id AS old_org_id,
                   -- a time-ordered (version 7) UUID: a batch's new orgs sit side by side in
                   -- every index keyed by org id, so inserts and foreign-key checks touch a
                   -- few hot pages instead of one random page of a large index per row
                   coalesce(o.id, encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                       placing substring(int8send(floor(extract(epoch FROM clock_timestamp())
                       * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid) AS org_id,
                   u.id AS old_user_id,
                   coalesce(u.id, nextval(CAST(:user_id_sequence AS regclass))::integer) AS user_id
            FROM rng r
            JOIN user_settings us ON us.id = r.id
            LEFT JOIN org o ON CAST(:lookups AS boolean) AND o.name = 'user_' || us.id || '_org'
            LEFT JOIN "user" u ON CAST(:lookups AS boolean) AND u.keycloak_user_id = us.keycloak_user_id
            WHERE r.id_valid AND r.winner_id = r.id
              AND (NOT CAST(:lookups AS boolean) OR NOT EXISTS (
                  SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_settings_id = r.id))
            OFFSET 0
        ) s
        LEFT JOIN "user" ou ON ou.id = s.old_user_id
        -- the membership can only exist where both the user and the personal org did
        LEFT JOIN org_user m ON s.old_user_id IS NOT NULL AND s.old_org_id IS NOT NULL
                            AND m.org_id = s.old_org_id AND m.user_id = s.old_user_id
    ) x
),
ins_org AS (
    INSERT INTO org (id, name)
    SELECT s.org_id, s.org_name FROM src s WHERE s.created_org
    RETURNING 1
),
ins_user AS (
    INSERT INTO "user" (id, keycloak_user_id, legacy_user_settings_id, current_org_id, status,
                        email, email_verified, accepted_tos, enable_sound_notifications)
    SELECT s.user_id, s.keycloak_user_id, s.id, s.org_id, 'active', s.email, s.email_verified,
           CAST(s.accepted_tos AS timestamptz), s.enable_sound_notifications
    FROM src s WHERE s.created_user
    RETURNING 1
),
ins_member AS (
    INSERT INTO org_user (org_id, user_id, role_id, status)
    SELECT s.org_id, s.user_id, (SELECT id FROM role WHERE name = 'admin'), 'active'
    FROM src s WHERE s.created_member
    RETURNING 1
),
ins_settings AS (
    INSERT INTO settings (org_id, {settings_columns})
    SELECT s.org_id, {settings_values}
    FROM src s WHERE s.created_settings
    RETURNING 1
),
upd_user AS (
    UPDATE "user" u SET
        email = CASE WHEN 'email' = ANY (s.fill_cols) THEN s.email ELSE u.email END,
        email_verified = CASE WHEN 'email_verified' = ANY (s.fill_cols)
                              THEN s.email_verified ELSE u.email_verified END,
        accepted_tos = CASE WHEN 'accepted_tos' = ANY (s.fill_cols)
                            THEN CAST(s.accepted_tos AS timestamptz) ELSE u.accepted_tos END,
        enable_sound_notifications = CASE WHEN 'enable_sound_notifications' = ANY (s.fill_cols)
                                          THEN s.enable_sound_notifications
                                          ELSE u.enable_sound_notifications END,
        legacy_user_settings_id = CASE WHEN 'legacy_user_settings_id' = ANY (s.fill_cols)
                                       THEN s.id ELSE u.legacy_user_settings_id END,
        current_org_id = CASE WHEN 'current_org_id' = ANY (s.fill_cols)
                              THEN s.org_id ELSE u.current_org_id END
    FROM src s
    WHERE u.id = s.old_user_id AND cardinality(s.fill_cols) > 0
    RETURNING 1
),
notes AS (
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
    SELECT :step, 'user_settings', d.sid, d.reason, true,
           jsonb_build_object('table', d.tbl, 'columns', to_jsonb(d.cols)), :run_id
    FROM (
        SELECT s.id AS sid, 'user_differs' AS reason, 'user' AS tbl, s.user_diff_cols AS cols
        FROM src s WHERE NOT s.created_user
        UNION ALL
        SELECT s.id, 'membership_differs', 'org_user',
               array_remove(ARRAY[
                CASE WHEN s.old_role_id IS DISTINCT FROM (SELECT id FROM role WHERE name = 'admin')
                     THEN 'role_id' END,
                CASE WHEN s.old_status <> 'active' THEN 'status' END
               ]::text[], NULL)
        FROM src s WHERE NOT s.created_member
        UNION ALL
        -- The settings columns whose value differs from the legacy row's, in table order: the
        -- legacy row read as a settings row (each value converted to the settings column's
        -- type), compared value by value.
        SELECT s.id, 'settings_differ', 'settings',
               ARRAY(SELECT a.key
                     FROM jsonb_each(to_jsonb(os)) a
                     JOIN jsonb_each(to_jsonb(jsonb_populate_record(NULL::settings, to_jsonb(us)))) b
                       ON b.key = a.key
                     JOIN pg_attribute c ON c.attrelid = 'settings'::regclass AND c.attname = a.key
                     WHERE a.key NOT IN ('id', 'org_id', 'user_id', 'created_at', 'updated_at')
                       AND a.value IS DISTINCT FROM b.value
                     ORDER BY c.attnum)
        FROM src s
        JOIN settings os ON os.org_id = s.org_id
        JOIN user_settings us ON us.id = s.id
        WHERE NOT s.created_settings
    ) d
    WHERE cardinality(d.cols) > 0
    ON CONFLICT (step, source_table, source_id, reason)
        DO UPDATE SET detail = EXCLUDED.detail, run_id = EXCLUDED.run_id
    RETURNING 1
),
ins_link AS (
    INSERT INTO orgmig_user_settings_link (user_settings_id, user_id, org_id, created_user,
        created_org, created_org_user, created_settings, filled_user_columns, run_id)
    SELECT s.id, s.user_id, s.org_id, s.created_user, s.created_org, s.created_member,
           s.created_settings, s.fill_cols, :run_id
    FROM src s
    RETURNING user_settings_id, user_id, org_id
)
SELECT (SELECT count(*) FROM rng) AS rows_read,
       c.winners,
       (SELECT count(*) FROM ins_link) AS linked,
       c.orgs_expected,
       (SELECT count(*) FROM ins_org) AS orgs_inserted,
       c.users_expected,
       (SELECT count(*) FROM ins_user) AS users_inserted,
       c.members_expected,
       (SELECT count(*) FROM ins_member) AS members_inserted,
       c.settings_expected,
       (SELECT count(*) FROM ins_settings) AS settings_inserted,
       c.fills_expected,
       (SELECT count(*) FROM upd_user) AS fills_done,
       (SELECT count(*) FROM skipped) + (SELECT count(*) FROM notes) AS reported,
       w.user_id AS winner_user_id, w.org_id AS winner_org_id
-- what src expects, counted in one pass over it (a pass over a batch's src costs about as much
-- as one of the inserts' reads of it)
FROM (SELECT count(*) AS winners,
             count(*) FILTER (WHERE created_org) AS orgs_expected,
             count(*) FILTER (WHERE created_user) AS users_expected,
             count(*) FILTER (WHERE created_member) AS members_expected,
             count(*) FILTER (WHERE created_settings) AS settings_expected,
             count(*) FILTER (WHERE cardinality(fill_cols) > 0) AS fills_expected
      FROM src) AS c
-- the login path's answer: the winner's link, inserted above or there before this statement
-- (:ids NULL: none, and ins_link is not read again for it)
CROSS JOIN (SELECT max(i) AS id FROM unnest(CAST(:ids AS integer[])) AS i) AS winner
LEFT JOIN LATERAL (
    SELECT k.user_id, k.org_id FROM ins_link k WHERE winner.id IS NOT NULL AND k.user_settings_id = winner.id
    UNION ALL
    SELECT l.user_id, l.org_id FROM orgmig_user_settings_link l WHERE l.user_settings_id = winner.id
    LIMIT 1
) w ON true
