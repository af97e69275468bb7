-- What a piece of work wrote to the WAL, read back with pg_walinspect (app.ops.wal): every
-- record between two LSNs, summed by the relation its first block belongs to.

-- name: install
CREATE EXTENSION IF NOT EXISTS pg_walinspect;

-- name: reserve
-- A temporary physical slot that keeps the WAL from the current LSN on (a checkpoint during the
-- work would otherwise recycle the segments before they are read); it goes with the session.
SELECT pg_create_physical_replication_slot(:slot, true, true);

-- name: release
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :slot;

-- name: insert_lsn
SELECT pg_current_wal_insert_lsn();

-- name: flushed
-- Whether the WAL up to :lsn is on disk (pg_walinspect reads no further).
SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn);

-- name: records
-- The records of this database between :start and :end, summed by the relation (tablespace,
-- filenode) of their first block: their bytes without the full-page images, the images' bytes,
-- and whether they belong to no transaction (pruning, vacuum, visibility map: xid 0). Records
-- without a block that a transaction of this database wrote (its commit, mostly) come with no
-- relation. Records of other databases, and the server's own (checkpoints), are left out.
WITH w AS (
    SELECT r.xid, r.record_length, r.fpi_length,
           CAST(substring(r.block_ref FROM 'rel (\d+)/') AS oid) AS spc,
           CAST(substring(r.block_ref FROM 'rel \d+/(\d+)/') AS oid) AS db,
           CAST(substring(r.block_ref FROM 'rel \d+/\d+/(\d+)') AS oid) AS filenode
    FROM pg_get_wal_records_info(CAST(:start AS pg_lsn), CAST(:end AS pg_lsn)) r
),
here AS (SELECT oid FROM pg_database WHERE datname = current_database()),
ours AS (SELECT DISTINCT xid FROM w WHERE db = (SELECT oid FROM here) AND xid <> '0')
SELECT w.spc, w.filenode, w.xid = '0' AS maintenance, count(*) AS records,
       sum(w.record_length - w.fpi_length) AS bytes, sum(w.fpi_length) AS fpi_bytes
FROM w
WHERE w.db = (SELECT oid FROM here)
   OR (w.db IS NULL AND w.xid IN (SELECT xid FROM ours))
GROUP BY 1, 2, 3;

-- name: relations
-- The relations behind filenodes of this database: the table each belongs to (an index's table,
-- a TOAST table's owner, a sequence's owning table) and which part of it the filenode is.
WITH f AS (
    SELECT f.spc, f.filenode,
           pg_filenode_relation(CASE WHEN f.spc = 1663 THEN 0 ELSE f.spc END, f.filenode) AS rel
    FROM unnest(CAST(:spaces AS oid[]), CAST(:filenodes AS oid[])) AS f(spc, filenode)
),
base AS (
    SELECT f.spc, f.filenode, c.oid, c.relkind,
           CASE c.relkind WHEN 'i' THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.oid)
                          WHEN 'S' THEN (SELECT d.refobjid FROM pg_depend d
                                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                                         LIMIT 1)
                          ELSE c.oid END AS tbl
    FROM f LEFT JOIN pg_class c ON c.oid = f.rel
)
SELECT b.spc, b.filenode, t.relname AS table_name, n.nspname AS schema_name,
       CASE WHEN b.relkind = 'i' THEN 'index' ELSE 'rows' END AS part
FROM base b
LEFT JOIN pg_class tt ON tt.oid = b.tbl
-- a TOAST table (or its index) counts as its owner's
LEFT JOIN pg_class t ON t.oid = coalesce((SELECT o.oid FROM pg_class o WHERE o.reltoastrelid = tt.oid), tt.oid)
LEFT JOIN pg_namespace n ON n.oid = t.relnamespace;
