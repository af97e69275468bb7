-- The server as the engine sees it.

-- name: free_connections
-- Connections a new session may still open: the server's (max_connections less the superuser
-- reserve and the client sessions open now) and, for a role that is not a superuser, the
-- database's and the role's own CONNECTION LIMITs.
SELECT least(
    current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
        - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
    CASE WHEN NOT r.rolsuper AND d.datconnlimit >= 0 THEN d.datconnlimit
        - (SELECT count(*) FROM pg_stat_activity WHERE datid = d.oid AND backend_type = 'client backend') END,
    CASE WHEN NOT r.rolsuper AND r.rolconnlimit >= 0 THEN r.rolconnlimit
        - (SELECT count(*) FROM pg_stat_activity WHERE usesysid = r.oid AND backend_type = 'client backend') END)
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database();

-- name: table_sizes
-- The tables named (as a step names them, quoted where needed) and their size on disk, for the
-- order in which a run that ended alone analyzes them (the largest first).
SELECT t, pg_total_relation_size(CAST(t AS regclass)) FROM unnest(CAST(:tables AS text[])) AS t;
