"""Benchmark: the identity step (revision 0007, `orgmig sync`, `orgmig reconcile`) on a finished
Okta snapshot of SimpleReport-style groups.

    python bench/identity_sync.py [--users 100000] [--orgs N] [--facilities 4] [--runs 3] [--legacy]
                                  [--profile [--explain]] [--database-url URL] [--keep]

It builds a template database at revision 0006 holding one finished Okta export (an
`idp_export_run` row with status 'finished') of `--users` accounts with three group memberships
each, loaded with set-based SQL straight into idp_user, idp_group and idp_membership (the export
over HTTP has its own bench, bench/okta_export.py), then VACUUM ANALYZE. Groups follow
SimpleReport's convention for ORGMIG_IDP_ENV=PROD: per org `SR-PROD-TENANT:{org}:{ROLE}` for
NO_ACCESS, ADMIN, USER, ENTRY_ONLY, ALL_FACILITIES and `SR-PROD-TENANT:{org}:FACILITY_ACCESS:{uuid}`
per facility, plus `SR-PROD-ADMINS` and a few groups the step reports or ignores. Per thousand
accounts (by `row_id % 1000`):

=========  =====================================================================================
0-499      NO_ACCESS, USER, one facility (3 of them LOCKED_OUT, PASSWORD_EXPIRED, RECOVERY)
500-649    ENTRY_ONLY and two facilities
650-749    NO_ACCESS, USER, ALL_FACILITIES
750-799    NO_ACCESS, ADMIN, ALL_FACILITIES
800-849    ADMIN in one org, NO_ACCESS and USER in the next (two orgs, no facility)
850-989    NO_ACCESS, USER, ENTRY_ONLY (one role per org: user; no facilities)
990        NO_ACCESS, a group of another environment, a malformed group (no role anywhere)
991        an unknown role (SR-PROD-TENANT:{org}:SUPERVISOR), NO_ACCESS, a facility: no_role_in_org
992        a facility id that is not a UUID, NO_ACCESS, USER
993, 994   SUSPENDED, DEPROVISIONED (disabled), NO_ACCESS, USER, a facility
995        email not verified; 996 the same email as 995 in upper case (two accounts, one email)
997        STAGED or PROVISIONED
998, 999   site admins: SR-PROD-ADMINS, NO_ACCESS, ADMIN
=========  =====================================================================================

and one facility of the first org is also named under the second (facility_in_two_orgs). With
`--legacy` the template first seeds `--users` legacy rows (app.ops.seed) and migrates them with
revision 0004, and nine in ten accounts carry the email of the app user from the legacy row of
the same number (one in ten of those in upper case, one in ten with spaces around it), so they
are matched by email; the tenth account has no app user, and the app users left over are
reported.

Then, `--runs` times (default 3), on a fresh file copy of the template (`CREATE DATABASE ...
TEMPLATE`), each a child process timed by wall clock (start-up included), in this order:

1. `orgmig sync --provider okta --dry-run` before anything is applied (seconds; no target);
2. `alembic upgrade head` from 0006: revision 0007 applies the snapshot (users/s, target >= 20,000);
3. `orgmig sync --provider okta` right after, the snapshot unchanged: it plans, compares and
   writes nothing (users/s, target >= 100,000; the bench checks that the undo log, which records
   every write, did not grow);
4. `orgmig reconcile --provider okta` (users/s, target >= 100,000; exit 0 expected: no drift);
5. `orgmig sync --provider okta --dry-run` on the synced tables (seconds; no target).

Each figure is the median of the runs (of an even number, the slower middle one), printed with
every run, its target, the command, the machine, the load average when it ran (the 1-minute
figure just before the command) and the commit. Users/s counts the snapshot's accounts
(`--users`) per second of wall time; the targets apply to it. It also times each measured
command's start-up without database work (`alembic heads`: the interpreter, Alembic and every
revision module with what they import; `orgmig sync --help` and `orgmig reconcile --help`: the
CLI and the one verb module each imports) and prints each rate net of its own start-up too.

`--profile` adds, on one more copy, the apply, the re-apply and reconcile run in this process with
one worker (`orgmig sync` and `orgmig reconcile` call the same functions), every SQL statement
timed and summed by its name in app/steps/identity/*.sql, slowest first; with `--explain`, the
first two runs of each statement in each phase (in the apply: the plan's, over every account, and
the first batch's) are also run under `EXPLAIN (ANALYZE, BUFFERS)` first, in a savepoint rolled
back, and their plans printed.

The exit code is 1 when a target is missed or a run did not do what it should (reconcile found
drift, the re-apply wrote rows, with `--legacy` fewer than half of the accounts given an app
user's email were linked by email), 2 when the bench could not run. The databases are dropped at the
end unless --keep. The server: `--database-url` or DATABASE_URL names a server where the bench
may create databases; default postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# app is imported once ROOT is on sys.path, so the bench also runs from a checkout where the
# package is not installed; E402 (imports below code) is expected for these lines.
from app.batch import Options, run_step  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import DatabaseError, make_engine  # noqa: E402
from app.ops import migrations  # noqa: E402
from app.ops.databases import Server, libpq  # noqa: E402
from app.ops.seed import seed_legacy  # noqa: E402
from app.steps.identity import CHAIN_FROM_SNAPSHOT, CHAIN_OF_PLAN, SQL, IdentitySync  # noqa: E402
from app.steps.identity.check import drift  # noqa: E402
from bench.common import ALEMBIC, DEFAULT_SERVER, code_version, load1, machine, open_server, say  # noqa: E402

PROVIDER = "okta"
ENV = "PROD"
TARGET_APPLY = 20_000
TARGET_REAPPLY = 100_000
TARGET_RECONCILE = 100_000
ROLES = ("NO_ACCESS", "ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES")  # group slots 1..5 of an org
SLOTS = 16  # group slots per org: 5 roles, then up to 10 facilities


def execute(url: URL, *statements: str, params: dict | None = None) -> list:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        out = []
        for sql in statements:
            cur = conn.execute(sql, params)
            out.append(cur.fetchall() if cur.description else None)
        return out


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


def build_template(server: Server, name: str, users: int, orgs: int, facilities: int, legacy: bool) -> Template:
    started = time.perf_counter()
    url = server.create(name, replace=True)
    cfg = migrations.alembic_config(url)
    cfg.attributes["configure_logger"] = False
    if legacy:
        migrations.upgrade(cfg, "0003")
        engine = make_engine(url, poolclass=NullPool)
        try:
            seed_legacy(engine, users, seed=0)
        finally:
            engine.dispose()
        cfg = migrations.alembic_config(url, {"batch_size": "500"})
        cfg.attributes["configure_logger"] = False
        migrations.upgrade(cfg, "0004")
    migrations.upgrade(cfg, "0006")
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


# --- the timed commands -----------------------------------------------------------------------

@dataclass
class Timed:
    seconds: float
    load: float
    exit_code: int
    tail: list[str]


def timed(cmd: list[str], url: URL, log: Path, ok: tuple[int, ...] = (0,)) -> Timed:
    env = dict(os.environ, DATABASE_URL=url.render_as_string(hide_password=False), PYTHONUNBUFFERED="1",
               ORGMIG_IDP_ENV=ENV)
    load = load1()
    with open(log, "w") as out:
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - started
    tail = log.read_text(errors="replace").splitlines()[-15:]
    if code not in ok:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited with {code}:\n  " + "\n  ".join(tail))
    return Timed(seconds, load, code, tail)


ORGMIG = [sys.executable, "-m", "app.cli"]
COMMANDS = {
    "dry_run_before": ORGMIG + ["sync", "--provider", PROVIDER, "--dry-run"],
    "apply": ALEMBIC + ["upgrade", "head"],
    "reapply": ORGMIG + ["sync", "--provider", PROVIDER],
    "reconcile": ORGMIG + ["reconcile", "--provider", PROVIDER],
    "dry_run_after": ORGMIG + ["sync", "--provider", PROVIDER, "--dry-run"],
}
SHOWN = {
    "dry_run_before": "orgmig sync --provider okta --dry-run   (nothing applied yet)",
    "apply": "alembic upgrade head   (0006 -> 0007)",
    "reapply": "orgmig sync --provider okta   (the same snapshot again)",
    "reconcile": "orgmig reconcile --provider okta",
    "dry_run_after": "orgmig sync --provider okta --dry-run   (tables in sync)",
}

STATE_SQL = """
SELECT (SELECT count(*) FROM user_identity WHERE provider = 'okta') AS links,
       (SELECT count(*) FROM user_identity WHERE provider = 'okta' AND matched_by = 'email') AS by_email,
       (SELECT count(*) FROM "user") AS users,
       (SELECT count(*) FROM org_user m JOIN org o ON o.id = m.org_id WHERE o.external_id IS NOT NULL) AS members,
       (SELECT count(*) FROM org_user_facility) AS facility_rows,
       (SELECT count(*) FROM "user" WHERE is_site_admin) AS site_admins,
       (SELECT count(*) FROM orgmig_identity_undo) AS undo,
       (SELECT coalesce(max(updated_at), '-infinity') FROM org_user) AS members_updated,
       (SELECT coalesce(max(updated_at), '-infinity') FROM "user") AS users_updated
"""
REPORTS_SQL = "SELECT reason, count(*) FROM orgmig_report WHERE step = 'identity:okta' GROUP BY reason ORDER BY reason"


@dataclass
class Run:
    times: dict[str, Timed] = field(default_factory=dict)
    applied: dict = field(default_factory=dict)
    reapplied: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)
    reconcile_tail: list[str] = field(default_factory=list)


# What each measured command imports before its first statement, without database work.
STARTUP = {
    "apply": (ALEMBIC + ["heads"], "alembic heads"),
    "reapply": (ORGMIG + ["sync", "--help"], "orgmig sync --help"),
    "reconcile": (ORGMIG + ["reconcile", "--help"], "orgmig reconcile --help"),
}


def startup(url: URL, logs: Path, times: int = 3) -> dict[str, Timed]:
    """Each measured command's start-up (STARTUP): the floor under its figure; the median of `times`."""
    return {what: median([timed(command, url, logs / f"startup_{what}.log") for _ in range(times)])
            for what, (command, _) in STARTUP.items()}


def one_run(server: Server, template: str, run_db: str, logs: Path) -> Run:
    url = server.create(run_db, template=template, replace=True)
    run = Run()
    for what in ("dry_run_before", "apply"):
        run.times[what] = timed(COMMANDS[what], url, logs / f"{run_db}_{what}.log")
    (state, reports) = execute(url, STATE_SQL, REPORTS_SQL)
    run.applied = dict(zip(("links", "by_email", "users", "members", "facility_rows", "site_admins", "undo",
                            "members_updated", "users_updated"), state[0], strict=True))
    run.reports = reports
    run.times["reapply"] = timed(COMMANDS["reapply"], url, logs / f"{run_db}_reapply.log")
    (state,) = execute(url, STATE_SQL)
    run.reapplied = dict(zip(run.applied, state[0], strict=True))
    run.times["reconcile"] = timed(COMMANDS["reconcile"], url, logs / f"{run_db}_reconcile.log", ok=(0, 1))
    run.reconcile_tail = run.times["reconcile"].tail
    run.times["dry_run_after"] = timed(COMMANDS["dry_run_after"], url, logs / f"{run_db}_dry_run_after.log")
    return run


# --- the profile: every statement of the step timed in this process ----------------------------

def statement_names() -> dict[str, str]:
    """The step's SQL text -> its name (plan.classify, state.load_users, ...), compare.plan and
    compare.drift as the step expands them."""
    names = {re.sub(r"\s+", " ", SQL.source(name)): name for name in SQL.names()}
    for name, chain in (("compare.plan", CHAIN_OF_PLAN), ("compare.drift", CHAIN_FROM_SNAPSHOT)):
        names[re.sub(r"\s+", " ", SQL.source(name, chain=chain))] = name
    return names


@dataclass
class Timing:
    calls: int = 0
    seconds: float = 0.0
    rows: int = 0
    plans: list[str] = field(default_factory=list)


class StatementClock:
    """Times every statement an engine runs, summed by the step's name for it (else its first
    words), per phase; with `explain`, the first run of each statement in a phase is also run
    under EXPLAIN (ANALYZE, BUFFERS) inside a savepoint rolled back (its writes undone), then for
    real, timed; so are the second (the plan runs a statement over every account, then each batch
    over its own)."""

    def __init__(self, engine, explain: bool) -> None:
        self.names = statement_names()
        self.explain = explain
        self.phases: dict[str, dict[str, Timing]] = {}
        self.phase = ""
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def name(self, statement: str) -> str:
        flat = re.sub(r"%\((\w+)\)s", r":\1", statement).replace("%%", "%")
        flat = re.sub(r"\s+", " ", flat).strip()
        return self.names.get(flat) or flat[:70]

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.phase:
            timing = self.phases.setdefault(self.phase, {}).setdefault(self.name(statement), Timing())
            if self.explain and len(timing.plans) < 2 and re.match(r"\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b",
                                                             statement, re.IGNORECASE):
                cursor.execute("SAVEPOINT bench_explain")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                timing.plans.append("\n".join(r[0] for r in cursor.fetchall()))
                cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        seconds = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        if self.phase:
            timing = self.phases[self.phase][self.name(statement)]
            timing.calls += 1
            timing.seconds += seconds
            timing.rows += max(cursor.rowcount, 0)


def profile(url: URL, explain: bool) -> tuple[dict[str, dict[str, Timing]], dict[str, float]]:
    """The apply, the re-apply and reconcile run in this process (one worker, so the statements'
    times add up to the wall time), every statement timed; returns them by phase, and each phase's
    wall time."""
    settings = Settings(ORGMIG_IDP_ENV=ENV, ORGMIG_WORKERS=1)
    step = IdentitySync(PROVIDER, settings)
    options = Options.from_settings(settings, progress_bar=False)
    engine = make_engine(url, poolclass=NullPool)
    clock = StatementClock(engine, explain)
    walls = {}
    try:
        for phase, work in (("apply (orgmig sync, 1 worker)", lambda: run_step(engine, step, "upgrade", options)),
                            ("re-apply (orgmig sync, 1 worker)", lambda: run_step(engine, step, "upgrade", options)),
                            ("reconcile", lambda: drift(engine, step))):
            clock.phase = phase
            started = time.perf_counter()
            work()
            walls[phase] = time.perf_counter() - started
            clock.phase = ""
    finally:
        engine.dispose()
    return clock.phases, walls


# --- report -----------------------------------------------------------------------------------


def median(runs: list[Timed]) -> Timed:
    """The median run (of an even number, the slower of the middle two)."""
    return sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100_000, help="IdP accounts in the snapshot (default 100,000)")
    p.add_argument("--orgs", type=int, help="orgs (default users / 50, at least 2)")
    p.add_argument("--facilities", type=int, default=4, help="facilities per org, 2 to 10 (default 4)")
    p.add_argument("--runs", type=int, default=3, help="runs, each on a fresh copy; the median is reported (default 3)")
    p.add_argument("--legacy", action="store_true", help="app users from revision 0004 that accounts match by email")
    p.add_argument("--profile", action="store_true", help="time every statement of the step on one more copy")
    p.add_argument("--explain", action="store_true", help="with --profile: print EXPLAIN (ANALYZE, BUFFERS) too")
    p.add_argument("--database-url", metavar="URL", help=f"server to use (default DATABASE_URL, else {DEFAULT_SERVER})")
    p.add_argument("--keep", action="store_true", help="keep the template database")
    args = p.parse_args(argv)
    orgs = args.orgs if args.orgs is not None else max(2, args.users // 50)
    if args.users < 1000 or args.runs < 1 or orgs < 2 or not 2 <= args.facilities <= 10:
        print("bench: --users must be at least 1,000, --runs at least 1, --orgs at least 2,"
              " --facilities 2 to 10", file=sys.stderr)
        return 2
    opened = open_server(args.database_url)
    if opened is None:
        return 2
    server, where = opened

    template_db = f"orgmig_bench_idp_{args.users}{'_legacy' if args.legacy else ''}"
    created: list[str] = []
    load_before = load1()
    code = code_version()
    runs: list[Run] = []
    phases: dict = {}
    walls: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="orgmig-bench-idp-") as tmp:
            logs = Path(tmp)
            say(f"loading {args.users:,} Okta accounts ({orgs:,} orgs, {args.facilities} facilities each"
                f"{', legacy app users from 0004' if args.legacy else ''}) into {template_db}")
            created.append(template_db)
            template = build_template(server, template_db, args.users, orgs, args.facilities, args.legacy)
            say(f"loaded in {template.seconds:.1f} s: {template.accounts:,} accounts, {template.groups:,} groups,"
                f" {template.memberships:,} memberships, {template.app_users:,} app users")
            floor = startup(template.url, logs)
            for i in range(1, args.runs + 1):
                run_db = f"{template_db}_run{i}"
                created.append(run_db)
                runs.append(one_run(server, template_db, run_db, logs))
                t = runs[-1].times
                say(f"run {i}: " + ", ".join(f"{k} {v.seconds:.2f} s" for k, v in t.items()))
                server.drop(run_db)
                created.remove(run_db)
            if args.profile:
                run_db = f"{template_db}_profile"
                created.append(run_db)
                url = server.create(run_db, template=template_db, replace=True)
                say("profile: the apply, the re-apply and reconcile in this process, every statement timed")
                phases, walls = profile(url, args.explain)
    except (DatabaseError, RuntimeError, psycopg.Error) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        for name in created:
            if name != template_db or not args.keep:
                server.drop(name)

    n = template.accounts
    med = {what: median([r.times[what] for r in runs]) for what in COMMANDS}
    rate = {what: n / med[what].seconds for what in COMMANDS}
    targets = {"apply": TARGET_APPLY, "reapply": TARGET_REAPPLY, "reconcile": TARGET_RECONCILE}
    first = runs[0]
    lines = [
        "orgmig benchmark: the identity step (revision 0007, orgmig sync, orgmig reconcile)",
        f"  server       {where}",
        f"  machine      {machine()}; load average before {load_before:.2f}, after {load1():.2f}",
        (f"  command      python bench/identity_sync.py --users {args.users} --orgs {orgs} --facilities"
         f" {args.facilities} --runs {args.runs}{' --legacy' if args.legacy else ''}"),
        f"  code         {code}",
        (f"  snapshot     {template.accounts:,} Okta accounts, {template.groups:,} groups, {template.memberships:,}"
         f" memberships, {orgs:,} orgs x {args.facilities} facilities; {template.app_users:,} app users;"
         f" loaded in {template.seconds:.1f} s"),
        (f"  applied      {first.applied['links']:,} links ({first.applied['by_email']:,} by email),"
         f" {first.applied['users']:,} app users, {first.applied['members']:,} memberships in IdP orgs,"
         f" {first.applied['facility_rows']:,} facility rows, {first.applied['site_admins']:,} site admins,"
         f" {first.applied['undo']:,} undo rows"),
        "  reported     " + ", ".join(f"{c:,} {r}" for r, c in first.reports),
    ]
    problems = []
    for what in COMMANDS:
        m = med[what]
        every = ", ".join(f"{r.times[what].seconds:.2f} s (load {r.times[what].load:.2f})" for r in runs)
        if what in targets:
            ok = rate[what] >= targets[what]
            if not ok:
                problems.append(what)
            net = n / max(m.seconds - floor[what].seconds, 1e-3)
            figure = (f"{rate[what]:>9,.0f} users/s ({m.seconds:.2f} s, load {m.load:.2f}; {net:,.0f} users/s net of"
                      f" start-up); target >= {targets[what]:,} users/s: {verdict(ok)}")
        else:
            figure = f"{m.seconds:>9.2f} s (load {m.load:.2f}); no target"
        lines.append(f"  {what:<15}{figure}")
        lines.append(f"  {'':<15}  {SHOWN[what]}; runs: {every}")
    for i, r in enumerate(runs, 1):
        if r.reapplied["undo"] != r.applied["undo"] or r.reapplied["members_updated"] != r.applied["members_updated"] \
                or r.reapplied["users_updated"] != r.applied["users_updated"]:
            problems.append(f"run {i}: the re-apply wrote ({r.applied['undo']:,} -> {r.reapplied['undo']:,} undo rows)")
        if template.emails_given and r.applied["by_email"] < template.emails_given // 2:
            problems.append(f"run {i}: {r.applied['by_email']:,} accounts linked by email, of"
                            f" {template.emails_given:,} given an app user's email")
        if r.times["reconcile"].exit_code != 0:
            problems.append(f"run {i}: reconcile found drift right after the sync: {r.reconcile_tail[-1]}")
    lines.append("  start-up     " + "; ".join(f"{STARTUP[what][1]} {t.seconds:.2f} s (load {t.load:.2f})"
                                              for what, t in floor.items())
                 + ": the interpreter and imports, no database work; the floor of each figure above")
    lines += [f"  PROBLEM      {p}" for p in problems if p not in targets]
    print("\n".join(lines))
    if phases:
        print_profile(phases, walls, args.explain)
    return 1 if problems else 0


def print_profile(phases: dict[str, dict[str, Timing]], walls: dict[str, float], explain: bool) -> None:
    for phase, items in phases.items():
        total = sum(t.seconds for t in items.values())
        print(f"\nprofile: {phase}: {walls[phase]:.2f} s wall, {total:.2f} s in SQL statements; slowest first"
              f" (load {load1():.2f})")
        for name, t in sorted(items.items(), key=lambda kv: -kv[1].seconds):
            if t.seconds < 0.01 and not explain:
                continue
            share = 100 * t.seconds / walls[phase]
            print(f"  {t.seconds:8.3f} s {share:5.1f}%  {name:<28} x{t.calls:<4} rows {t.rows:,}")
            for plan in t.plans if explain else ():
                print("\n".join("        " + line for line in plan.splitlines()))


if __name__ == "__main__":
    sys.exit(main())
