"""Benchmark: WAL bytes per migrated user of revision 0004 (user_settings) and of the identity
revision 0007, split by what they are for (app.ops.wal, read with pg_walinspect).

    python bench/wal.py [--users 20000] [--revisions 0004,0007,sync] [--batch-size 500] [--orgs N]
                        [--facilities 4] [--database-url URL] [--keep]

For 0004: a template database at 0003 with `--users` seeded legacy rows (app.ops.seed), VACUUM
ANALYZE; for 0007: a template at 0006 with the same legacy rows migrated by 0004 and one finished
Okta export of `--users` accounts (bench/harness/okta_snapshot.py, as bench/identity_sync.py
--legacy builds it). Each revision then runs once, `alembic -x batch_size=B upgrade <rev>` in a
child process with the defaults otherwise, on a fresh copy of its template after a CHECKPOINT,
inside a WAL window of app.ops.wal (a temporary replication slot holds the WAL until it is read).
`sync` is revision 0007's step as `orgmig sync --provider okta` runs it at the head revision
(ORGMIG_BATCH_SIZE=B): the same data, loaded after `alembic upgrade head` (whose revision 0007
found no export to apply), so the step writes into the bookkeeping as the later revisions left
it (a fresh database's `alembic upgrade head` applies 0007 before them).

It prints, per revision, the WAL bytes per user of each kind (the contract's rows and indexes,
the bookkeeping's rows and indexes, full-page images, the steering's probe, catalog,
transactions, pruning and vacuum, other), each bookkeeping table's share, and the bookkeeping's
bytes against the contract rows' own (both without full-page images; target at most 25%).
Users: for 0004 the legacy rows migrated (links), for 0007 and sync the export's accounts. The full-page
images depend on where checkpoints fall; the other kinds are the same for the same code and
data. Exit code 1 when a target is missed, 2 when the bench could not run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import harness.server as db
from harness.okta_snapshot import ENV, build_template
from harness.process import timed
from harness.report import exit_code, fail, header, line, load1, say, verdict
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops.wal import BOOKKEEPING, CONTRACT, KINDS, WalSplit, WalWindow

TARGET_SHARE = 0.25
USERS = {"0004": "SELECT count(*) FROM orgmig_user_settings_link",
         "0007": "SELECT count(*) FROM idp_user",
         "sync": "SELECT count(*) FROM idp_user"}


def run_command(revision: str, batch_size: int) -> tuple[list[str], dict[str, str], str]:
    """(argv, extra environment, what) of the run measured for `revision`."""
    if revision == "sync":
        return ([*db.ORGMIG, "sync", "--provider", "okta"], {"ORGMIG_BATCH_SIZE": str(batch_size)},
                "orgmig sync --provider okta")
    return ([*db.ALEMBIC, "-x", f"batch_size={batch_size}", "upgrade", revision], {},
            f"alembic upgrade {revision}")


def measure(url: URL, revision: str, batch_size: int, log: Path) -> tuple[WalSplit, int, float, float]:
    """The run of `revision` (run_command()) on `url` in a WAL window: (split, users, seconds, load
    before)."""
    argv, extra, what = run_command(revision, batch_size)
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            db.checkpoint(conn)
            with WalWindow(conn) as window:
                run = timed(argv, db.child_env(url, ORGMIG_IDP_ENV=ENV, **extra), log, tail=12, what=what)
            split = window.split()
            users = conn.exec_driver_sql(USERS[revision]).scalar_one()
    finally:
        engine.dispose()
    return split, users, run.seconds, run.load


def report(revision: str, split: WalSplit, users: int, seconds: float, load: float) -> tuple[list[str], bool]:
    kinds = split.kinds()
    total = split.total
    out = [line(revision, f"{users:,} users in {seconds:.1f} s (load {load:.2f}): {total / users:,.0f} WAL"
                          f" bytes/user in all, {split.records / users:.1f} records/user")]
    for kind in KINDS:
        if kinds[kind]:
            out.append(line("", f"{kind:<22}{kinds[kind] / users:>8,.0f} bytes/user  ({kinds[kind] / total:5.1%})"))
    if split.fpi:
        out.append(line("", "  full-page images of: " + ", ".join(
            f"{cls} {n / users:,.0f}" for cls, n in sorted(split.fpi.items(), key=lambda kv: -kv[1]) if n)
            + " bytes/user"))
    for table, parts in split.by_table(BOOKKEEPING).items():
        rows, index = parts["rows"] / users, parts["index"] / users
        out.append(line("", f"  {table:<28} rows {rows:>6,.0f}, indexes {index:>6,.0f} bytes/user"))
    share = split.bookkeeping_share
    ok = share <= TARGET_SHARE
    out.append(line("", f"bookkeeping {split.of(BOOKKEEPING) / users:,.0f} bytes/user against the contract rows'"
                        f" {split.of(CONTRACT) / users:,.0f}: {share:.1%};"
                        f" target <= {TARGET_SHARE:.0%}: {verdict(ok)}"))
    return out, ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000, help="legacy rows and IdP accounts (default 20,000)")
    p.add_argument("--revisions", default="0004,0007",
                   help="which revisions to measure (default 0004,0007; `sync`: revision 0007's step run"
                        " by `orgmig sync` at the head revision)")
    p.add_argument("--batch-size", type=int, default=500, help="-x batch_size (default 500)")
    p.add_argument("--orgs", type=int, help="0007, sync: orgs (default users / 50, at least 2)")
    p.add_argument("--facilities", type=int, default=4, help="0007, sync: facilities per org (default 4)")
    db.add_server_arguments(p, keep="keep the template databases")
    args = p.parse_args(argv)
    revisions = [r.strip() for r in args.revisions.split(",") if r.strip()]
    orgs = args.orgs if args.orgs is not None else max(2, args.users // 50)
    if args.users < 1000 or not revisions or set(revisions) - set(USERS):
        return fail("--users must be at least 1,000 and --revisions a list of 0004, 0007 and sync")
    server, where = db.open_server(args.database_url)
    load_before = load1()
    lines: list[str] = []
    missed = []
    try:
        with db.Databases(server, args.keep) as dbs, tempfile.TemporaryDirectory(prefix="orgmig-bench-wal-") as tmp:
            for revision in revisions:
                template = f"orgmig_bench_wal_{revision}_{args.users}"
                say(f"{revision}: building {template} ({args.users:,} users)")
                if revision == "0004":
                    db.prepare(dbs.create(template, replace=True), args.users, seed=0)
                else:
                    dbs.add(template)
                    build_template(server, template, args.users, orgs, args.facilities, legacy=True,
                                   revision="head" if revision == "sync" else "0006")
                url = dbs.copy(f"{template}_run", template)
                say(f"{revision}: {run_command(revision, args.batch_size)[2]} in a WAL window")
                split, users, seconds, load = measure(url, revision, args.batch_size, Path(tmp) / f"{revision}.log")
                dbs.drop(f"{template}_run")
                shown, ok = report(revision, split, users, seconds, load)
                lines += shown
                if not ok:
                    missed.append(revision)
    except db.ERRORS as exc:
        return fail(str(exc))
    command = (f"python bench/wal.py --users {args.users} --revisions {','.join(revisions)}"
               f" --batch-size {args.batch_size}"
               + (f" --orgs {orgs} --facilities {args.facilities}" if {"0007", "sync"} & set(revisions) else ""))
    print("\n".join(header("orgmig benchmark: WAL bytes per migrated user (revisions 0004 and 0007)", where,
                           f"load average before {load_before:.2f}, after {load1():.2f}", command) + lines))
    return exit_code(missed)


if __name__ == "__main__":
    sys.exit(main())
