-- Step user_settings_to_org: foreign keys from other tables (the application's own, the identity
-- step's) into org or "user", and how many rows of one such table reference rows the upgrade
-- created.

-- name: foreign_refs
SELECT c.conrelid::regclass::text AS tbl, a.attname AS col, c.confrelid::regclass::text AS target
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
  AND c.confrelid IN ('org'::regclass, '"user"'::regclass)
  AND c.conrelid NOT IN ('org_user'::regclass, 'settings'::regclass, '"user"'::regclass,
                         'orgmig_user_settings_link'::regclass);

-- name: referencing_rows
-- {table}.{column} references {target_key} of rows the upgrade created ({created}).
SELECT count(*) FROM {table} t
WHERE t.{column} IN (SELECT {target_key} FROM orgmig_user_settings_link WHERE {created});

-- name: referenced_links
-- Which of the legacy rows :ids have a row the upgrade created ({created}) that {table}.{column}
-- references (by {target_key}).
SELECT l.user_settings_id FROM orgmig_user_settings_link l
WHERE l.user_settings_id = ANY (CAST(:ids AS integer[])) AND l.{created}
  AND EXISTS (SELECT 1 FROM {table} t WHERE t.{column} = l.{target_key});
