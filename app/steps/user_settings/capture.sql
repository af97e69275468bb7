-- Step user_settings_to_org: the application's writes to user_settings, from the start of
-- revision 0004's run until `orgmig finalize` (expand, then contract, as pgroll keeps old and new
-- in step until `complete`). A trigger records each inserted, updated or deleted row (its id, and
-- its keycloak_user_id before and after) in orgmig_user_settings_change; the changes are drained
-- after the run's last batch, by every later drain (`orgmig work`, `orgmig finalize`) and
-- before a downgrade: a row updated in place (same keycloak_user_id) has its settings and user
-- values updated where the upgrade created them; an inserted or deleted row, or one whose
-- keycloak_user_id changed, has its whole keycloak_user_id group (before and after) migrated
-- again: what the upgrade created for it is removed and the group's current rows go through the
-- batch statement, so the winner and the reports are what migrating the final table gives.
-- Installed when the run starts; the first drain with a group to migrate again adds an index
-- on the link table's user_id (link_index); `orgmig finalize` (or a downgrade of 0004) takes the locks below, drains the last changes and
-- removes it all: no trace after.

-- name: install
CREATE TABLE IF NOT EXISTS orgmig_user_settings_change (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id integer NOT NULL,
    old_keycloak_user_id varchar,
    new_keycloak_user_id varchar,
    op char(1) NOT NULL
);
CREATE OR REPLACE FUNCTION orgmig_capture_user_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO orgmig_user_settings_change (id, new_keycloak_user_id, op)
        VALUES (NEW.id, NEW.keycloak_user_id, 'I');
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO orgmig_user_settings_change (id, old_keycloak_user_id, new_keycloak_user_id, op)
        VALUES (NEW.id, OLD.keycloak_user_id, NEW.keycloak_user_id, 'U');
        IF NEW.id <> OLD.id THEN
            INSERT INTO orgmig_user_settings_change (id, old_keycloak_user_id, op)
            VALUES (OLD.id, OLD.keycloak_user_id, 'D');
        END IF;
    ELSE
        INSERT INTO orgmig_user_settings_change (id, old_keycloak_user_id, op)
        VALUES (OLD.id, OLD.keycloak_user_id, 'D');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS orgmig_capture ON user_settings;
CREATE TRIGGER orgmig_capture AFTER INSERT OR UPDATE OR DELETE ON user_settings
    FOR EACH ROW EXECUTE FUNCTION orgmig_capture_user_settings();

-- name: installed
SELECT to_regclass('orgmig_user_settings_change') IS NOT NULL;

-- name: lock
-- Before the capture is removed: the tables it touches, to itself, in one statement and in the
-- order the login path reads them (the link table, then user_settings), waiting at most half of
-- deadlock_timeout (or lock_timeout, if lower) so that it is this transaction that gives up (and
-- is retried) whenever it waits on an application transaction that waits on it: the
-- application's transactions never meet a deadlock here. The application's reads and writes of
-- user_settings wait (each at most its own lock timeout) until the transaction commits.
SELECT set_config('orgmig.lock_timeout', current_setting('lock_timeout'), true),
       set_config('lock_timeout', least(
           nullif(extract(epoch FROM current_setting('lock_timeout')::interval) * 1000, 0),
           greatest(1, extract(epoch FROM current_setting('deadlock_timeout')::interval) * 500)
       )::integer || 'ms', true);
LOCK TABLE orgmig_user_settings_link, user_settings, orgmig_user_settings_change IN ACCESS EXCLUSIVE MODE;
SELECT set_config('lock_timeout', current_setting('orgmig.lock_timeout'), true);

-- name: remove
-- (after `lock`, in the same transaction: nothing below waits)
DROP TRIGGER IF EXISTS orgmig_capture ON user_settings;
DROP FUNCTION IF EXISTS orgmig_capture_user_settings();
DROP TABLE IF EXISTS orgmig_user_settings_change;
DROP INDEX IF EXISTS ix_orgmig_user_settings_link_user_id;

-- name: take
-- Up to :n changes, oldest first, out of the log: each drain transaction owns what it takes.
WITH taken AS (
    DELETE FROM orgmig_user_settings_change
    WHERE seq IN (SELECT seq FROM orgmig_user_settings_change ORDER BY seq LIMIT :n)
    RETURNING id, old_keycloak_user_id, new_keycloak_user_id, op
)
SELECT
    -- updated in place: the same keycloak_user_id before and after
    coalesce(array_agg(DISTINCT id) FILTER (WHERE op = 'U' AND old_keycloak_user_id IS NOT DISTINCT FROM
                                             new_keycloak_user_id), '{}') AS in_place,
    -- rows whose keycloak_user_id group must be migrated again
    coalesce(array_agg(DISTINCT id) FILTER (WHERE NOT (op = 'U' AND old_keycloak_user_id IS NOT DISTINCT FROM
                                                         new_keycloak_user_id)), '{}') AS moved,
    coalesce(array_agg(DISTINCT k) FILTER (WHERE k IS NOT NULL), '{}') AS groups
FROM taken
LEFT JOIN LATERAL (
    SELECT unnest(ARRAY[old_keycloak_user_id, new_keycloak_user_id]) AS k
    WHERE NOT (op = 'U' AND old_keycloak_user_id IS NOT DISTINCT FROM new_keycloak_user_id)
) g ON true;

-- name: pending
SELECT count(*) FROM orgmig_user_settings_change;

-- name: update_in_place
-- Rows updated in place: their values again where the upgrade created the settings and the user.
WITH s AS (
    UPDATE settings x SET ({settings_columns}) = ({settings_values_us})
    FROM orgmig_user_settings_link l JOIN user_settings us ON us.id = l.user_settings_id
    WHERE l.user_settings_id = ANY (CAST(:ids AS integer[])) AND l.created_settings AND x.org_id = l.org_id
    RETURNING 1
),
u AS (
    UPDATE "user" x SET email = us.email, email_verified = us.email_verified,
           accepted_tos = CAST(us.accepted_tos AS timestamptz),
           enable_sound_notifications = us.enable_sound_notifications
    FROM orgmig_user_settings_link l JOIN user_settings us ON us.id = l.user_settings_id
    WHERE l.user_settings_id = ANY (CAST(:ids AS integer[])) AND l.created_user AND x.id = l.user_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM u);

-- name: link_index
-- group_ids finds what the upgrade linked to a user by the user's id; the link table itself is
-- keyed by the legacy row only. Built by the first drain that needs it, not when the capture is
-- installed: maintained row by row through the run's batches, which never read it, it was a
-- quarter of the run's bookkeeping WAL (docs/performance.md, "WAL per migrated user"). One
-- builder at a time (the lock); the others find it built. Once it is there, a drain takes no lock
-- for it (CREATE INDEX locks the table before it looks whether the index exists, and the
-- login path's link inserts would wait for the drain's commit).
DO $$
BEGIN
    IF to_regclass('ix_orgmig_user_settings_link_user_id') IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('orgmig:link_index'));
        CREATE INDEX IF NOT EXISTS ix_orgmig_user_settings_link_user_id ON orgmig_user_settings_link (user_id);
    END IF;
END $$;

-- name: group_ids
-- Every legacy id of the groups to migrate again: the moved rows, the current rows of the
-- keycloak_user_ids they had or have, and what the upgrade migrated of those ids.
SELECT coalesce(array_agg(DISTINCT id), '{}') FROM (
    SELECT unnest(CAST(:moved AS integer[])) AS id
    UNION SELECT us.id FROM user_settings us WHERE us.keycloak_user_id = ANY (CAST(:groups AS varchar[]))
    UNION SELECT l.user_settings_id FROM orgmig_user_settings_link l
          JOIN "user" u ON u.id = l.user_id WHERE u.keycloak_user_id = ANY (CAST(:groups AS varchar[]))
) x;

-- name: forget_reports
DELETE FROM orgmig_report
WHERE step = :step AND source_table = 'user_settings' AND source_id = ANY (CAST(:ids AS integer[]));

-- name: report_kept
-- A changed row whose migrated rows the application has built on keeps them as they were; so said.
INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail, run_id)
SELECT :step, 'user_settings', id, 'changed_during_upgrade', true,
       jsonb_build_object('kept', 'the application built rows on what was migrated before the change'), :run_id
FROM unnest(CAST(:ids AS integer[])) AS id
ON CONFLICT (step, source_table, source_id, reason) DO NOTHING;
