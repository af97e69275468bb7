-- Step user_settings_to_org, downgrade: before the new rows go, what the application changed in
-- them since the upgrade goes back to user_settings, so an application switched back to the
-- legacy table loses nothing. Per downgrade batch, for the links of legacy rows :start..:end;
-- the batch runs with TimeZone = 'UTC' (a timestamptz goes back as the UTC wall clock of a
-- naive legacy column). `orgmig rollback-preview` counts the same over every link.

-- name: settings
-- The personal org's settings, where they differ from the legacy row (json compared as text).
UPDATE user_settings us SET ({settings_columns}) = ({settings_values})
FROM orgmig_user_settings_link l
JOIN settings s ON s.org_id = l.org_id
WHERE l.user_settings_id BETWEEN :start AND :end AND us.id = l.user_settings_id
  AND ({legacy_compare}) IS DISTINCT FROM ({target_compare});

-- name: users
-- The user's own values the legacy row also holds, where the user has one and it differs.
UPDATE user_settings us SET
    email = coalesce(u.email, us.email),
    email_verified = coalesce(u.email_verified, us.email_verified),
    accepted_tos = coalesce(u.accepted_tos, us.accepted_tos),
    enable_sound_notifications = coalesce(u.enable_sound_notifications, us.enable_sound_notifications)
FROM orgmig_user_settings_link l
JOIN "user" u ON u.id = l.user_id
WHERE l.user_settings_id BETWEEN :start AND :end AND us.id = l.user_settings_id
  AND ((u.email IS NOT NULL AND u.email IS DISTINCT FROM us.email)
       OR (u.email_verified IS NOT NULL AND u.email_verified IS DISTINCT FROM us.email_verified)
       OR (u.accepted_tos IS NOT NULL AND u.accepted_tos IS DISTINCT FROM CAST(us.accepted_tos AS timestamptz))
       OR (u.enable_sound_notifications IS NOT NULL
           AND u.enable_sound_notifications IS DISTINCT FROM us.enable_sound_notifications));

-- name: new_users
-- Users the application created through the new tables (no legacy row, no keycloak_user_id the
-- legacy table knows): a legacy row each, with their current org's settings where it has some.
-- The users themselves are the application's and stay (the guard of revision 0002 counts them).
INSERT INTO user_settings (keycloak_user_id, email, email_verified, accepted_tos,
                           enable_sound_notifications, {settings_columns_but_user})
SELECT u.keycloak_user_id, coalesce(u.email, s.email), coalesce(u.email_verified, s.email_verified),
       coalesce(u.accepted_tos, s.accepted_tos),
       coalesce(u.enable_sound_notifications, s.enable_sound_notifications, false),
       {settings_values_but_user}
FROM "user" u
LEFT JOIN settings s ON s.org_id = u.current_org_id
WHERE NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_id = u.id)
  AND NOT EXISTS (SELECT 1 FROM user_settings x WHERE x.keycloak_user_id = u.keycloak_user_id);

-- name: preview
-- What a downgrade of revision 0004 would write back, by kind.
SELECT
  (SELECT count(*) FROM orgmig_user_settings_link l
     JOIN settings s ON s.org_id = l.org_id JOIN user_settings us ON us.id = l.user_settings_id
    WHERE ({legacy_compare}) IS DISTINCT FROM ({target_compare})) AS "legacy rows whose settings the app changed",
  (SELECT count(*) FROM orgmig_user_settings_link l
     JOIN "user" u ON u.id = l.user_id JOIN user_settings us ON us.id = l.user_settings_id
    WHERE (u.email IS NOT NULL AND u.email IS DISTINCT FROM us.email)
       OR (u.email_verified IS NOT NULL AND u.email_verified IS DISTINCT FROM us.email_verified)
       OR (u.accepted_tos IS NOT NULL AND u.accepted_tos IS DISTINCT FROM CAST(us.accepted_tos AS timestamptz))
       OR (u.enable_sound_notifications IS NOT NULL
           AND u.enable_sound_notifications IS DISTINCT FROM us.enable_sound_notifications))
    AS "legacy rows whose user values the app changed",
  (SELECT count(*) FROM "user" u
    WHERE NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM user_settings x WHERE x.keycloak_user_id = u.keycloak_user_id))
    AS "users created through the new tables (a legacy row each)";
