-- The snapshot writer's statements (app.idp.snapshot): an export run (idp_export_run), its
-- streams' checkpoints (idp_export_cursor) and the rows of its pages (idp_user, idp_group,
-- idp_membership, one provider's each). A page's rows arrive as a JSON array in :rows; a DBA can
-- run any statement in psql after `\set provider 'okta'`, `\set run_id 1` and so on.

-- name: unfinished_run
-- The provider's run that did not finish, locked: resumed when it asked for the same thing.
SELECT id, mode, since, requests FROM idp_export_run
WHERE provider = :provider AND status IN ('running', 'failed')
FOR UPDATE;

-- name: resume_run
UPDATE idp_export_run SET status = 'running', last_error = NULL, updated_at = now() WHERE id = :run_id;

-- name: checkpoints
SELECT stream, cursor, done, pages, items FROM idp_export_cursor WHERE run_id = :run_id;

-- name: abandon_run
-- Set aside: its checkpoints are not used again; the rows it wrote stay until a new run replaces them.
UPDATE idp_export_run SET status = 'abandoned', updated_at = now() WHERE id = :run_id;

-- name: new_run
INSERT INTO idp_export_run (provider, mode, since) VALUES (:provider, :mode, :since) RETURNING id;

-- name: rewind
-- A stream's stale checkpoint put back to the cursor that fetched its last page (:items long).
UPDATE idp_export_cursor
SET cursor = :cursor, pages = greatest(pages - 1, 0), items = greatest(items - :items, 0), updated_at = now()
WHERE run_id = :run_id AND stream = :stream AND NOT done AND cursor = :stale;

-- name: restart_stream
-- A stream whose checkpoint cursor :stale the provider refused (expired) put back to its start:
-- its pages are read again from the first one (their rows are upserted, the same).
UPDATE idp_export_cursor SET cursor = NULL, pages = 0, items = 0, updated_at = now()
WHERE run_id = :run_id AND stream = :stream AND NOT done AND cursor = :stale;

-- name: upsert_users
INSERT INTO idp_user (provider, external_id, login, email, email_verified, first_name, last_name,
                      status, idp_created_at, idp_updated_at, attributes, raw,
                      first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.external_id)
       :provider, r.external_id, r.login, r.email, r.email_verified, r.first_name, r.last_name,
       r.status, r.idp_created_at, r.idp_updated_at, coalesce(r.attributes, '{}'::jsonb), r.raw,
       :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    external_id text, login text, email text, email_verified boolean, first_name text, last_name text,
    status text, idp_created_at timestamptz, idp_updated_at timestamptz, attributes jsonb, raw jsonb)
ORDER BY r.external_id
ON CONFLICT (provider, external_id) DO UPDATE SET
    login = EXCLUDED.login, email = EXCLUDED.email, email_verified = EXCLUDED.email_verified,
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, status = EXCLUDED.status,
    idp_created_at = EXCLUDED.idp_created_at, idp_updated_at = EXCLUDED.idp_updated_at,
    attributes = EXCLUDED.attributes, raw = EXCLUDED.raw, last_seen_run_id = EXCLUDED.last_seen_run_id;

-- name: upsert_groups
INSERT INTO idp_group (provider, kind, external_id, name, description, group_type,
                       parent_external_id, attributes, raw, first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.kind, r.external_id)
       :provider, r.kind, r.external_id, r.name, r.description, r.group_type,
       r.parent_external_id, coalesce(r.attributes, '{}'::jsonb), r.raw, :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    kind text, external_id text, name text, description text, group_type text, parent_external_id text,
    attributes jsonb, raw jsonb)
ORDER BY r.kind, r.external_id
ON CONFLICT (provider, kind, external_id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description, group_type = EXCLUDED.group_type,
    parent_external_id = EXCLUDED.parent_external_id, attributes = EXCLUDED.attributes,
    raw = EXCLUDED.raw, last_seen_run_id = EXCLUDED.last_seen_run_id;

-- name: upsert_members
INSERT INTO idp_membership (provider, kind, group_external_id, user_external_id, attributes,
                            first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.kind, r.group_external_id, r.user_external_id)
       :provider, r.kind, r.group_external_id, r.user_external_id,
       coalesce(r.attributes, '{}'::jsonb), :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    kind text, group_external_id text, user_external_id text, attributes jsonb)
ORDER BY r.kind, r.group_external_id, r.user_external_id
ON CONFLICT (provider, kind, group_external_id, user_external_id) DO UPDATE SET
    attributes = EXCLUDED.attributes, last_seen_run_id = EXCLUDED.last_seen_run_id;

-- name: spawn
-- Streams a page discovered (a group's members, say), each checkpointed from its start.
INSERT INTO idp_export_cursor (run_id, stream)
SELECT :run_id, s FROM unnest(CAST(:streams AS text[])) AS s
ON CONFLICT (run_id, stream) DO NOTHING;

-- name: sweep_group_members
-- A group's member list read to its end: its members this run did not see are gone.
DELETE FROM idp_membership
WHERE provider = :provider AND kind = :kind AND group_external_id = :group_id
  AND last_seen_run_id <> :run_id;

-- name: checkpoint
INSERT INTO idp_export_cursor (run_id, stream, cursor, done, pages, items, updated_at)
VALUES (:run_id, :stream, :cursor, :done, 1, :items, now())
ON CONFLICT (run_id, stream) DO UPDATE SET
    cursor = EXCLUDED.cursor, done = EXCLUDED.done,
    pages = idp_export_cursor.pages + 1, items = idp_export_cursor.items + EXCLUDED.items,
    updated_at = now();

-- name: touch_run
UPDATE idp_export_run SET requests = :requests, updated_at = now() WHERE id = :run_id;

-- name: prune_members
-- After a full export, what it did not see: the provider no longer has it. Rows this run saw
-- carry its id; every other row of the provider carries an earlier run's (run ids only grow),
-- which the index on last_seen_run_id finds.
DELETE FROM idp_membership WHERE last_seen_run_id < :run_id AND provider = :provider;

-- name: prune_groups
DELETE FROM idp_group WHERE last_seen_run_id < :run_id AND provider = :provider;

-- name: prune_users
DELETE FROM idp_user WHERE last_seen_run_id < :run_id AND provider = :provider;

-- name: counts
SELECT (SELECT count(*) FROM idp_user WHERE provider = :provider) AS users,
       (SELECT count(*) FROM idp_group WHERE provider = :provider) AS groups,
       (SELECT count(*) FROM idp_membership WHERE provider = :provider) AS memberships;

-- name: finish_run
UPDATE idp_export_run
SET status = 'finished', finished_at = now(), updated_at = now(), requests = :requests,
    users_count = :users, groups_count = :groups, memberships_count = :memberships, last_error = NULL
WHERE id = :run_id;

-- name: fail_run
UPDATE idp_export_run SET status = 'failed', last_error = :error, requests = :requests, updated_at = now()
WHERE id = :run_id;
