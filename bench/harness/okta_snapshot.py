"""A template database at revision 0006 holding one finished Okta export of SimpleReport-style
groups, loaded with set-based SQL straight into idp_user, idp_group and idp_membership (the kinds
of account per thousand are listed in bench/identity_sync.py); with `legacy`, app users from
revision 0004 whose emails nine in ten accounts carry."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops.databases import Server, libpq
from app.ops.seed import seed_legacy

from .server import execute, upgrade_to

ENV = "PROD"
ROLES = ("NO_ACCESS", "ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES")  # group slots 1..5 of an org
SLOTS = 16  # group slots per org: 5 roles, then up to 10 facilities

# --- the snapshot -----------------------------------------------------------------------------

# An org's external id, a group's external id (from its number: org * 16 + slot) and a facility id.
ORG_EXT = "('CA-Org-' || {o} || '-' || left(md5('org' || {o}), 6))"
GROUP_EXT = "('00g' || lpad(to_hex({k}), 17, '0'))"
FACILITY = "(CAST(md5('orgmig-bench-facility:' || {o} || ':' || {f}) AS uuid))"

RUN = """
INSERT INTO idp_export_run (provider, mode, status, requests, users_count, groups_count, memberships_count,
                            started_at, updated_at, finished_at)
VALUES ('okta', 'full', 'finished', 0, 0, 0, 0, now() - interval '2 hours', now() - interval '1 hour',
        now() - interval '1 hour')
RETURNING id
"""

GROUPS = f"""
INSERT INTO idp_group (provider, kind, external_id, name, group_type, raw, first_seen_run_id, last_seen_run_id)
SELECT 'okta', 'group', {GROUP_EXT.format(k='k')}, name, 'OKTA_GROUP',
       jsonb_build_object('id', {GROUP_EXT.format(k='k')}, 'type', 'OKTA_GROUP',
                          'created', '2021-03-01T12:00:00.000Z', 'objectClass', jsonb_build_array('okta:user_group'),
                          'profile', jsonb_build_object('name', name, 'description', NULL)),
       %(run)s, %(run)s
FROM (
    SELECT o * {SLOTS} + r AS k, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='o')} || ':' || role AS name
    FROM generate_series(1, %(orgs)s) o, unnest(ARRAY{list(ROLES)}) WITH ORDINALITY AS t(role, r)
    UNION ALL
    SELECT o * {SLOTS} + 5 + f, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='o')} || ':FACILITY_ACCESS:'
                                || {FACILITY.format(o='o', f='f')}
    FROM generate_series(1, %(orgs)s) o, generate_series(1, %(facilities)s) f
    UNION ALL
    SELECT k, name FROM (VALUES
        (1, 'SR-{ENV}-ADMINS'),
        (2, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='1')} || ':SUPERVISOR'),
        (3, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='1')} || ':FACILITY_ACCESS:not-a-uuid'),
        (4, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='1')}),
        (5, 'SR-DEV-TENANT:' || {ORG_EXT.format(o='1')} || ':USER'),
        (6, 'Everyone'),
        (7, 'SR-{ENV}-TENANT:' || {ORG_EXT.format(o='least(2, %(orgs)s)')} || ':FACILITY_ACCESS:'
            || {FACILITY.format(o='1', f='1')})
    ) AS s(k, name)
) g
"""

# Per account u: s = u % 1000 picks the kind (see the module docstring), o its org, p the next
# org, f its facility; the memberships are three group numbers.
ACCOUNTS = f"""
CREATE TEMP TABLE bench_account AS
SELECT u, s, o, p, f,
       CASE WHEN s = 993 THEN 'SUSPENDED' WHEN s = 994 THEN 'DEPROVISIONED'
            WHEN s = 997 THEN (ARRAY['STAGED', 'PROVISIONED'])[1 + (u / 1000) %% 2]
            WHEN s = 100 THEN 'LOCKED_OUT' WHEN s = 101 THEN 'PASSWORD_EXPIRED' WHEN s = 102 THEN 'RECOVERY'
            ELSE 'ACTIVE' END AS status,
       CASE WHEN s = 996 THEN upper('user' || (u - 1) || '@example.org') ELSE 'user' || u || '@example.org' END
           AS email,
       s <> 995 AS verified,
       CASE
           WHEN s < 500 OR s BETWEEN 993 AND 997
               THEN ARRAY[o * {SLOTS} + 1, o * {SLOTS} + 3, o * {SLOTS} + 5 + f]
           WHEN s < 650 THEN ARRAY[o * {SLOTS} + 4, o * {SLOTS} + 5 + f, o * {SLOTS} + 5 + 1 + f %% %(facilities)s]
           WHEN s < 750 THEN ARRAY[o * {SLOTS} + 1, o * {SLOTS} + 3, o * {SLOTS} + 5]
           WHEN s < 800 THEN ARRAY[o * {SLOTS} + 1, o * {SLOTS} + 2, o * {SLOTS} + 5]
           WHEN s < 850 THEN ARRAY[o * {SLOTS} + 2, p * {SLOTS} + 1, p * {SLOTS} + 3]
           WHEN s < 990 THEN ARRAY[o * {SLOTS} + 1, o * {SLOTS} + 3, o * {SLOTS} + 4]
           WHEN s = 990 THEN ARRAY[o * {SLOTS} + 1, 5, 4]
           WHEN s = 991 THEN ARRAY[2, o * {SLOTS} + 1, o * {SLOTS} + 5 + f]
           WHEN s = 992 THEN ARRAY[3, o * {SLOTS} + 1, o * {SLOTS} + 3]
           ELSE ARRAY[1, o * {SLOTS} + 1, o * {SLOTS} + 2]
       END AS groups
FROM (SELECT u, u %% 1000 AS s, 1 + (u * 7919) %% %(orgs)s AS o, 1 + (1 + (u * 7919) %% %(orgs)s) %% %(orgs)s AS p,
             1 + (u / 7) %% %(facilities)s AS f
      FROM generate_series(1, %(users)s) u) x
"""

USERS = """
INSERT INTO idp_user (provider, external_id, login, email, email_verified, first_name, last_name, status,
                      idp_created_at, idp_updated_at, attributes, raw, first_seen_run_id, last_seen_run_id, row_id)
SELECT 'okta', ext, a.email, a.email, a.verified, 'First' || a.u, 'Last' || a.u, a.status, t.created, t.updated,
       jsonb_build_object('mobilePhone', NULL, 'secondEmail', NULL),
       jsonb_build_object(
           'id', ext, 'status', a.status, 'created', t.created, 'activated', t.created,
           'statusChanged', t.updated, 'lastUpdated', t.updated, 'passwordChanged', t.created,
           'type', jsonb_build_object('id', 'oty1a2b3c4d5e6f7g8h9'),
           'profile', jsonb_build_object('firstName', 'First' || a.u, 'lastName', 'Last' || a.u,
                                         'mobilePhone', NULL, 'secondEmail', NULL,
                                         'login', a.email, 'email', a.email),
           'credentials', jsonb_build_object(
               'emails', jsonb_build_array(jsonb_build_object(
                   'value', a.email, 'status', CASE WHEN a.verified THEN 'VERIFIED' ELSE 'UNVERIFIED' END,
                   'type', 'PRIMARY')),
               'provider', jsonb_build_object('type', 'OKTA', 'name', 'OKTA'))),
       %(run)s, %(run)s, a.u
FROM bench_account a
CROSS JOIN LATERAL (SELECT '00u' || lpad(to_hex(a.u), 17, '0') AS ext,
                           timestamptz '2022-01-01 00:00Z' + a.u * interval '7 minutes' AS created,
                           timestamptz '2025-01-01 00:00Z' + a.u * interval '1 minute' AS updated) t
"""

MEMBERSHIPS = f"""
INSERT INTO idp_membership (provider, kind, group_external_id, user_external_id, first_seen_run_id, last_seen_run_id)
SELECT 'okta', 'group', {GROUP_EXT.format(k='k')}, '00u' || lpad(to_hex(a.u), 17, '0'), %(run)s, %(run)s
FROM bench_account a CROSS JOIN LATERAL unnest(a.groups) k
"""

COUNTS = """
UPDATE idp_export_run SET users_count = (SELECT count(*) FROM idp_user),
                          groups_count = (SELECT count(*) FROM idp_group),
                          memberships_count = (SELECT count(*) FROM idp_membership)
WHERE id = %(run)s
"""

FINISH_LOAD = (
    "SELECT setval(pg_get_serial_sequence('idp_user', 'row_id'), (SELECT max(row_id) FROM idp_user))",
)

# --legacy: nine accounts in ten carry the email of the app user made from the legacy row of the
# same number, one in ten of those upper-cased and one in ten with spaces around it.
LEGACY_EMAILS = """
UPDATE idp_user x SET
    email = CASE x.row_id % 10 WHEN 3 THEN upper(u.email) WHEN 7 THEN '  ' || u.email || ' ' ELSE u.email END,
    login = u.email
FROM "user" u
WHERE u.legacy_user_settings_id = x.row_id AND u.email IS NOT NULL AND btrim(u.email) <> ''
  AND x.row_id % 10 <> 9 AND x.row_id % 1000 NOT IN (995, 996)
"""


@dataclass
class Template:
    name: str
    url: URL
    seconds: float
    accounts: int
    groups: int
    memberships: int
    app_users: int
    facilities: int
    emails_given: int  # --legacy: accounts given the email of an app user


def build_template(server: Server, name: str, users: int, orgs: int, facilities: int, legacy: bool,
                   revision: str = "0006") -> Template:
    """The snapshot loaded into a database at `revision` (0006 by default, where `alembic upgrade
    head` applies it with revision 0007; "head": revision 0007 ran with no export to apply, and
    `orgmig sync` applies it)."""
    started = time.perf_counter()
    url = server.create(name, replace=True)
    x = {}
    if legacy:
        upgrade_to(url, "0003")
        engine = make_engine(url, poolclass=NullPool)
        try:
            seed_legacy(engine, users, seed=0)
        finally:
            engine.dispose()
        x = {"batch_size": "500"}
        upgrade_to(url, "0004", **x)
    upgrade_to(url, revision, **x)
    params = {"users": users, "orgs": orgs, "facilities": facilities}
    emails_given = 0
    with psycopg.connect(libpq(url)) as conn:
        conn.execute("SET work_mem = '256MB'")
        params["run"] = conn.execute(RUN).fetchone()[0]
        for sql in (GROUPS, ACCOUNTS, USERS, MEMBERSHIPS, COUNTS, *FINISH_LOAD):
            conn.execute(sql, params)
        if legacy:
            emails_given = conn.execute(LEGACY_EMAILS).rowcount
        conn.commit()
    (sizes,) = execute(url, "VACUUM (ANALYZE)", "CHECKPOINT",
                       "SELECT (SELECT count(*) FROM idp_user), (SELECT count(*) FROM idp_group),"
                       " (SELECT count(*) FROM idp_membership), (SELECT count(*) FROM \"user\")")[2:]
    accounts, groups, memberships, app_users = sizes[0]
    return Template(name, url, time.perf_counter() - started, accounts, groups, memberships, app_users,
                    orgs * facilities, emails_given)

