-- The roles a data step's memberships need: created where missing, recorded as created by the
-- step (so its downgrade removes only those), and removed by that downgrade unless in use.

-- name: ensure
-- :step, :names and :ranks (arrays of the same length). Returns the roles that existed before
-- with another rank: left as they are (this statement's snapshot does not see the rows it
-- inserts, so a role created here is never among them).
WITH wanted AS (
    SELECT * FROM unnest(CAST(:names AS text[]), CAST(:ranks AS integer[])) AS w(name, rank)
),
ins AS (
    INSERT INTO role (name, rank) SELECT name, rank FROM wanted
    ON CONFLICT (name) DO NOTHING
    RETURNING name
),
noted AS (
    INSERT INTO orgmig_created_row (step, table_name, row_key)
    SELECT :step, 'role', name FROM ins
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT w.name, w.rank AS expected, r.rank AS found
FROM wanted w JOIN role r ON r.name = w.name
WHERE r.rank <> w.rank
ORDER BY w.rank;

-- name: remove
-- The roles the step created, unless a membership still uses them.
WITH gone AS (
    DELETE FROM role r USING orgmig_created_row c
    WHERE c.step = :step AND c.table_name = 'role' AND c.row_key = r.name
      AND NOT EXISTS (SELECT 1 FROM org_user m WHERE m.role_id = r.id)
    RETURNING r.name
)
DELETE FROM orgmig_created_row c USING gone
WHERE c.step = :step AND c.table_name = 'role' AND c.row_key = gone.name;
