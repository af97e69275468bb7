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
5. `orgmig sync --provider okta --dry-run` on the synced tables (seconds; no target);

then, on the same database, the floors of bench/identity_floors.py: the apply's rows inserted
again set-based in one session (the write floor, under the apply), and both sides read once and
joined (the comparison floor, under the re-apply and reconcile). Each of those three figures is
printed beside its floor, the session's floor plus the command's start-up, and the ratio (target
<= 1.5x): each run's command over that run's floor, the median of the runs and every run's.

Each figure is the median of the runs (of an even number, the slower middle one), printed with
every run, its target, the command, the machine, the load average when it ran (the 1-minute
figure just before the command) and the commit. Users/s counts the snapshot's accounts
(`--users`) per second of wall time; the targets apply to it. It also times each measured
command's start-up without database work (`alembic heads`: the interpreter, Alembic and every
revision module with what they import; `orgmig sync --help` and `orgmig reconcile --help`: the
CLI and the one verb module each imports), once in every run right before the command it is the
floor of, so that the two see the same load (timed minutes apart, a load spike in one made the
ratio swing by a third), and prints each rate net of its own start-up too.

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
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness.server as db
from harness.okta_snapshot import ENV, build_template
from harness.process import Timed, median, timed
from harness.profile import StatementClock, Timing, print_profile
from harness.report import code_version, exit_code, fail, header, load1, say, verdict
from identity_floors import compare_floor, write_floor
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.batch import Options, run_step
from app.config import Settings
from app.db import make_engine
from app.steps.identity import CHAIN_FROM_SNAPSHOT, CHAIN_OF_PLAN, KEEP, SQL, IdentitySync
from app.steps.identity.readonly import drift

PROVIDER = "okta"
TARGET_APPLY = 20_000
TARGET_REAPPLY = 100_000
TARGET_RECONCILE = 100_000
# each figure within this multiple of its same-run floor (bench/identity_floors.py) plus start-up
TARGET_RATIO = 1.5
FLOOR_OF = {"apply": "write", "reapply": "compare", "reconcile": "compare"}


# --- the timed commands -----------------------------------------------------------------------

ORGMIG, ALEMBIC = db.ORGMIG, db.ALEMBIC
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
    floors: dict[str, float] = field(default_factory=dict)
    startup: dict[str, Timed] = field(default_factory=dict)  # timed right before each command

    def floor(self, what: str) -> float:
        """The floor under `what` in this run: its session floor plus its start-up."""
        return self.floors[FLOOR_OF[what]] + self.startup[what].seconds

    def ratio(self, what: str) -> float:
        return self.times[what].seconds / self.floor(what)


# What each measured command imports before its first statement, without database work.
STARTUP = {
    "apply": (ALEMBIC + ["heads"], "alembic heads"),
    "reapply": (ORGMIG + ["sync", "--help"], "orgmig sync --help"),
    "reconcile": (ORGMIG + ["reconcile", "--help"], "orgmig reconcile --help"),
}


def run(cmd: list[str], url: URL, log: Path, ok: tuple[int, ...] = (0,)) -> Timed:
    return timed(cmd, db.child_env(url, ORGMIG_IDP_ENV=ENV), log, ok)


def one_run(url: URL, run_db: str, logs: Path) -> Run:
    """The five commands in turn on `url`, a fresh copy of the template; right before each command
    that has a floor, its start-up (STARTUP)."""
    out = Run()

    def measure(what: str, ok: tuple[int, ...] = (0,)) -> None:
        if what in STARTUP:
            out.startup[what] = run(STARTUP[what][0], url, logs / f"{run_db}_startup_{what}.log")
        out.times[what] = run(COMMANDS[what], url, logs / f"{run_db}_{what}.log", ok)

    for what in ("dry_run_before", "apply"):
        measure(what)
    (state, reports) = db.execute(url, STATE_SQL, REPORTS_SQL)
    out.applied = dict(zip(("links", "by_email", "users", "members", "facility_rows", "site_admins", "undo",
                            "members_updated", "users_updated"), state[0], strict=True))
    out.reports = reports
    measure("reapply")
    (state,) = db.execute(url, STATE_SQL)
    out.reapplied = dict(zip(out.applied, state[0], strict=True))
    measure("reconcile", ok=(0, 1))
    out.reconcile_tail = out.times["reconcile"].tail
    measure("dry_run_after")
    out.floors = {"compare": compare_floor(url), "write": write_floor(url)}
    return out


# --- the profile: every statement of the step timed in this process ----------------------------

def statement_names() -> dict[str, str]:
    """The step's SQL text -> its name (plan.classify, state.load_users, ...), compare.plan and
    compare.drift as the step expands them."""
    names = {re.sub(r"\s+", " ", SQL.source(name)): name for name in SQL.names()}
    for name, chain in (("compare.plan", CHAIN_OF_PLAN), ("compare.drift", CHAIN_FROM_SNAPSHOT),
                        ("compare.refill", CHAIN_OF_PLAN)):
        names[re.sub(r"\s+", " ", SQL.source(name, chain=chain, keep=KEEP))] = name
    return names




def profile(url: URL, explain: bool) -> tuple[dict[str, dict[str, Timing]], dict[str, float]]:
    """The apply, the re-apply and reconcile run in this process (one worker, so the statements'
    times add up to the wall time), every statement timed; returns them by phase, and each phase's
    wall time."""
    settings = Settings(ORGMIG_IDP_ENV=ENV, ORGMIG_WORKERS=1)
    step = IdentitySync(PROVIDER, settings)
    options = Options.from_settings(settings, progress_bar=False)
    engine = make_engine(url, poolclass=NullPool)
    clock = StatementClock(engine, statement_names(), explain)
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



def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100_000, help="IdP accounts in the snapshot (default 100,000)")
    p.add_argument("--orgs", type=int, help="orgs (default users / 50, at least 2)")
    p.add_argument("--facilities", type=int, default=4, help="facilities per org, 2 to 10 (default 4)")
    p.add_argument("--runs", type=int, default=3, help="runs, each on a fresh copy; the median is reported (default 3)")
    p.add_argument("--legacy", action="store_true", help="app users from revision 0004 that accounts match by email")
    p.add_argument("--profile", action="store_true", help="time every statement of the step on one more copy")
    p.add_argument("--explain", action="store_true", help="with --profile: print EXPLAIN (ANALYZE, BUFFERS) too")
    db.add_server_arguments(p, keep="keep the template database")
    args = p.parse_args(argv)
    orgs = args.orgs if args.orgs is not None else max(2, args.users // 50)
    if args.users < 1000 or args.runs < 1 or orgs < 2 or not 2 <= args.facilities <= 10:
        return fail("--users must be at least 1,000, --runs at least 1, --orgs at least 2, --facilities 2 to 10")
    server, where = db.open_server(args.database_url)

    template_db = f"orgmig_bench_idp_{args.users}{'_legacy' if args.legacy else ''}"
    load_before = load1()
    code = code_version()
    runs: list[Run] = []
    phases: dict = {}
    walls: dict = {}
    try:
        with db.Databases(server, args.keep) as dbs, tempfile.TemporaryDirectory(prefix="orgmig-bench-idp-") as tmp:
            logs = Path(tmp)
            say(f"loading {args.users:,} Okta accounts ({orgs:,} orgs, {args.facilities} facilities each"
                f"{', legacy app users from 0004' if args.legacy else ''}) into {template_db}")
            dbs.add(template_db)
            template = build_template(server, template_db, args.users, orgs, args.facilities, args.legacy)
            say(f"loaded in {template.seconds:.1f} s: {template.accounts:,} accounts, {template.groups:,} groups,"
                f" {template.memberships:,} memberships, {template.app_users:,} app users")
            for i in range(1, args.runs + 1):
                run_db = f"{template_db}_run{i}"
                runs.append(one_run(dbs.copy(run_db, template_db), run_db, logs))
                t = runs[-1].times
                say(f"run {i}: " + ", ".join(f"{k} {v.seconds:.2f} s" for k, v in t.items()))
                dbs.drop(run_db)
            if args.profile:
                url = dbs.copy(f"{template_db}_profile", template_db)
                say("profile: the apply, the re-apply and reconcile in this process, every statement timed")
                phases, walls = profile(url, args.explain)
    except db.ERRORS as exc:
        return fail(str(exc))

    n = template.accounts
    med = {what: median([r.times[what] for r in runs]) for what in COMMANDS}
    rate = {what: n / med[what].seconds for what in COMMANDS}
    targets = {"apply": TARGET_APPLY, "reapply": TARGET_REAPPLY, "reconcile": TARGET_RECONCILE}
    first = runs[0]
    command = (f"python bench/identity_sync.py --users {args.users} --orgs {orgs} --facilities {args.facilities}"
               f" --runs {args.runs}{' --legacy' if args.legacy else ''}{' --profile' if args.profile else ''}"
               f"{' --explain' if args.profile and args.explain else ''}")
    lines = header("orgmig benchmark: the identity step (revision 0007, orgmig sync, orgmig reconcile)", where,
                   f"load average before {load_before:.2f}, after {load1():.2f}", command, code) + [
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
            net = n / max(median([r.times[what].seconds - r.startup[what].seconds for r in runs], key=float), 1e-3)
            figure = (f"{rate[what]:>9,.0f} users/s ({m.seconds:.2f} s, load {m.load:.2f}; {net:,.0f} users/s net of"
                      f" start-up); target >= {targets[what]:,} users/s: {verdict(ok)}")
        else:
            figure = f"{m.seconds:>9.2f} s (load {m.load:.2f}); no target"
        lines.append(f"  {what:<15}{figure}")
        if what in FLOOR_OF:
            # each run's command over that run's floor (the start-up timed right before it)
            session = median([r.floors[FLOOR_OF[what]] for r in runs], key=float)
            up = median([r.startup[what].seconds for r in runs], key=float)
            floor_s = median([r.floor(what) for r in runs], key=float)
            ratio = median([r.ratio(what) for r in runs], key=float)
            lines.append(f"  {'':<15}  floor {floor_s:.2f} s (medians: {FLOOR_OF[what]} floor {session:.2f} s in one"
                         f" session, start-up {up:.2f} s): {ratio:.2f}x its floor (the median run's); target <="
                         f" {TARGET_RATIO}x: {verdict(ratio <= TARGET_RATIO)}")
            lines.append(f"  {'':<15}  per run: " + ", ".join(
                f"{r.times[what].seconds:.2f} / ({r.floors[FLOOR_OF[what]]:.2f} + {r.startup[what].seconds:.2f})"
                f" = {r.ratio(what):.2f}x" for r in runs))
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
    lines.append("  start-up     " + "; ".join(
        f"{command} " + ", ".join(f"{r.startup[what].seconds:.2f} s (load {r.startup[what].load:.2f})" for r in runs)
        for what, (_, command) in STARTUP.items())
        + ": the interpreter and imports, no database work, timed in each run right before the command it is"
          " the floor of")
    lines += [f"  PROBLEM      {p}" for p in problems if p not in targets]
    print("\n".join(lines))
    if phases:
        print_profile(phases, walls, args.explain)
    return exit_code(problems)



if __name__ == "__main__":
    sys.exit(main())
