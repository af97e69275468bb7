-- Step user_settings_to_org, downgrade: for the links of legacy rows :start..:end, delete exactly
-- the settings, memberships, users and orgs the upgrade created, set back to NULL the user
-- values it filled on users the application had created, and remove the links.
WITH l AS MATERIALIZED (
    SELECT * FROM orgmig_user_settings_link WHERE user_settings_id BETWEEN :start AND :end
      AND (CAST(:ids AS integer[]) IS NULL OR user_settings_id = ANY (CAST(:ids AS integer[])))
),
del_settings AS (
    DELETE FROM settings x USING l WHERE l.created_settings AND x.org_id = l.org_id RETURNING 1
),
del_members AS (
    DELETE FROM org_user m USING l
    WHERE l.created_org_user AND m.org_id = l.org_id AND m.user_id = l.user_id
    RETURNING 1
),
unfill AS (
    UPDATE "user" u SET
        email = CASE WHEN 'email' = ANY (l.filled_user_columns) THEN NULL ELSE u.email END,
        email_verified = CASE WHEN 'email_verified' = ANY (l.filled_user_columns)
                              THEN NULL ELSE u.email_verified END,
        accepted_tos = CASE WHEN 'accepted_tos' = ANY (l.filled_user_columns)
                            THEN NULL ELSE u.accepted_tos END,
        enable_sound_notifications = CASE WHEN 'enable_sound_notifications' = ANY (l.filled_user_columns)
                                          THEN NULL ELSE u.enable_sound_notifications END,
        legacy_user_settings_id = CASE WHEN 'legacy_user_settings_id' = ANY (l.filled_user_columns)
                                       THEN NULL ELSE u.legacy_user_settings_id END,
        current_org_id = CASE WHEN 'current_org_id' = ANY (l.filled_user_columns)
                              THEN NULL ELSE u.current_org_id END
    FROM l
    WHERE u.id = l.user_id AND NOT l.created_user AND cardinality(l.filled_user_columns) > 0
    RETURNING 1
),
del_users AS (
    DELETE FROM "user" u USING l WHERE l.created_user AND u.id = l.user_id RETURNING 1
),
del_orgs AS (
    DELETE FROM org o USING l WHERE l.created_org AND o.id = l.org_id RETURNING 1
),
del_link AS (
    DELETE FROM orgmig_user_settings_link x USING l
    WHERE x.user_settings_id = l.user_settings_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM l) AS rows_read,
       (SELECT count(*) FROM del_settings) + (SELECT count(*) FROM del_members)
     + (SELECT count(*) FROM unfill) + (SELECT count(*) FROM del_users)
     + (SELECT count(*) FROM del_orgs) AS written
