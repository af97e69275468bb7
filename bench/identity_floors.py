"""The floors bench/identity_sync.py sets each figure beside, measured in the same run on the same
database: what the host needs at the least for the work, without orgmig's rules.

- write floor (under the apply): the rows the apply wrote (its orgs and facilities, the users it
  created, every link, membership in an IdP org and facility row) inserted again set-based, one
  INSERT ... SELECT per table, in one database session and one transaction: after the run they
  are copied aside and deleted, and the insert back is timed (connection and commit included).
- comparison floor (under the re-apply and reconcile): one statement that reads both sides once
  and joins them (each account's group names against the names its links' memberships and
  facility rows give, and each linked account's email and names against its user's), hash joins,
  nothing written.

Each floor is the median of `times` measurements; the bench adds the command's own start-up
(measured beside it) to it, as the command pays that too.
"""

from __future__ import annotations

import time

import psycopg
from harness.process import median
from sqlalchemy.engine import URL

from app.ops.databases import libpq

SET_ASIDE = """
CREATE TABLE floor_org AS SELECT * FROM org WHERE external_id IS NOT NULL;
CREATE TABLE floor_facility AS SELECT * FROM facility;
CREATE TABLE floor_user AS SELECT * FROM "user"
    WHERE id IN (SELECT user_id FROM user_identity WHERE provider = 'okta' AND matched_by = 'created');
CREATE TABLE floor_link AS SELECT * FROM user_identity WHERE provider = 'okta';
CREATE TABLE floor_member AS SELECT m.* FROM org_user m WHERE m.org_id IN (SELECT id FROM floor_org);
CREATE TABLE floor_access AS SELECT * FROM org_user_facility;
"""
DELETE = """
DELETE FROM org_user_facility;
DELETE FROM org_user WHERE org_id IN (SELECT id FROM floor_org);
DELETE FROM user_identity WHERE provider = 'okta';
DELETE FROM "user" WHERE id IN (SELECT id FROM floor_user);
DELETE FROM facility;
DELETE FROM org WHERE id IN (SELECT id FROM floor_org);
"""
INSERT = """
INSERT INTO org SELECT * FROM floor_org;
INSERT INTO facility SELECT * FROM floor_facility;
INSERT INTO "user" SELECT * FROM floor_user;
INSERT INTO user_identity SELECT * FROM floor_link;
INSERT INTO org_user SELECT * FROM floor_member;
INSERT INTO org_user_facility SELECT * FROM floor_access;
"""
COMPARE = """
WITH snapshot AS (
    SELECT m.user_external_id AS x, g.name
    FROM idp_membership m
    JOIN idp_group g ON g.provider = m.provider AND g.kind = m.kind AND g.external_id = m.group_external_id
    WHERE m.provider = 'okta'
),
tables AS (
    SELECT i.external_id AS x, 'SR-PROD-TENANT:' || o.external_id || ':' || upper(r.name) AS name
    FROM user_identity i JOIN org_user m ON m.user_id = i.user_id
    JOIN org o ON o.id = m.org_id JOIN role r ON r.id = m.role_id
    WHERE i.provider = 'okta'
    UNION ALL
    SELECT i.external_id, 'SR-PROD-TENANT:' || o.external_id || ':FACILITY_ACCESS:' || f.facility_id
    FROM user_identity i JOIN org_user_facility f ON f.user_id = i.user_id JOIN org o ON o.id = f.org_id
    WHERE i.provider = 'okta'
)
SELECT (SELECT count(*) FROM snapshot s FULL JOIN tables t ON t.x = s.x AND t.name = s.name
        WHERE s.x IS NULL OR t.x IS NULL),
       (SELECT count(*) FROM idp_user p
        JOIN user_identity i ON i.provider = p.provider AND i.external_id = p.external_id
        JOIN "user" u ON u.id = i.user_id
        WHERE p.provider = 'okta'
          AND (btrim(p.email), p.first_name, p.last_name) IS DISTINCT FROM (u.email, u.first_name, u.last_name))
"""


def _seconds(url: URL, sql: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(sql)
        conn.commit()
    return time.perf_counter() - started


def write_floor(url: URL, times: int = 3) -> float:
    """The apply's rows inserted again set-based in one session (seconds, the median of `times`);
    the tables are as the apply left them afterwards."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(SET_ASIDE)
    found = []
    for _ in range(times):
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute(DELETE)
        found.append(_seconds(url, INSERT))
    return median(found, key=lambda s: s)


def compare_floor(url: URL, times: int = 3) -> float:
    """Both sides read once and joined, in one session (seconds, the median of `times`)."""
    return median([_seconds(url, COMPARE) for _ in range(times)], key=lambda s: s)
