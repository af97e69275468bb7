"""`orgmig demo [--users N] [--seed S]`: the whole job on synthetic data, end to end, in well
under a minute: seed legacy users, `alembic upgrade head`, the verification SQL, a summary.

Without DATABASE_URL it starts an embedded PostgreSQL under a local folder (--data-dir). With
DATABASE_URL, or --database-url, it uses that server, in a database of its own, orgmig_demo,
dropped and created again on each run; it never touches another. So --database-url names a
server: its database part, when given, must be orgmig_demo (or postgres, template1), and any
other name is refused rather than ignored.

Exit codes: 0 every check passed, 1 a check failed, 2 configuration or connection."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import psycopg
from alembic.config import Config
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app import db
from app.cli import output
from app.cli.common import add_database_option, whole_number
from app.config import get_settings
from app.errors import ConfigError, DatabaseError, OrgmigError
from app.ops import migrations, verify
from app.ops.databases import Server
from app.ops.embedded import EmbeddedPostgres
from app.ops.seed import MAX_USERS, SEEDS, render, seed_legacy

DEMO_DB = "orgmig_demo"
# Database names that mean "the server" in --database-url: the demo uses DEMO_DB beside them.
SERVER_DATABASES = (None, "", "postgres", "template1", DEMO_DB)


def register(sub) -> None:
    p = sub.add_parser("demo", help="seed synthetic legacy users, migrate, verify (embedded PostgreSQL by default)",
                       description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_option(p)
    p.add_argument("--users", default=23_000, metavar="N", action=whole_number(1, MAX_USERS),
                   help="legacy users to seed (default 23,000)")
    p.add_argument("--seed", default=0, metavar="S", action=whole_number(*SEEDS),
                   help="seed for the synthetic data (default 0)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the embedded PostgreSQL keeps its data (default .orgmig, or ORGMIG_DATA_DIR)")
    p.set_defaults(handler=handle)


def _fresh_database(server: URL) -> URL:
    """Drop and create the demo database on `server`; return its URL. The server is reached
    through the database its URL names, else (none, or the demo's own) `postgres`."""
    if server.database in (None, "", DEMO_DB):
        server = server.set(database="postgres")
    try:
        return Server(server).create(DEMO_DB, replace=True)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot create database {DEMO_DB} on {db.redact(server)}:"
                            f" {db.error_summary(exc)}") from None


def _upgrade_until(cfg: Config, engine: Engine, table: str) -> str:
    """Apply revisions one at a time, oldest first, until `table` exists; return the last one."""
    for rev in reversed(list(migrations.script_directory(cfg).walk_revisions())):
        migrations.upgrade(cfg, rev.revision)
        if inspect(engine).has_table(table):
            return rev.revision
    raise OrgmigError(f"no revision creates {table}")


def handle(args: argparse.Namespace) -> int:
    console = output.console(stderr=True)
    started = time.monotonic()
    server = None
    settings = get_settings()
    explicit = args.database_url or (settings.database_url.get_secret_value() if settings.database_url else None)
    if explicit:
        base = db.database_url(explicit)
        if args.database_url and base.database not in SERVER_DATABASES:
            raise ConfigError(f"orgmig demo uses a database of its own, {DEMO_DB}, dropped and created again on"
                              f" each run, and --database-url names database {base.database}: give the server's"
                              f" URL without a database (or with /{DEMO_DB}), such as"
                              f" {db.redact(base.set(database=DEMO_DB))}")
        where = f"database {DEMO_DB} on {db.redact(base.set(database=DEMO_DB))}"
        cleanup = f'psql "{db.redact(base)}" -c \'DROP DATABASE {DEMO_DB}\''
    else:
        data_dir = (args.data_dir or settings.data_dir).resolve()
        console.print(f"Starting an embedded PostgreSQL in {data_dir} ...")
        server = EmbeddedPostgres(data_dir / "pgdata", cleanup="stop")
        base = server.url
        where = f"embedded PostgreSQL, data in {data_dir / 'pgdata'}"
        cleanup = f"rm -rf {data_dir}"
    try:
        url = _fresh_database(base)
        engine = db.make_engine(url, poolclass=NullPool)
        cfg = migrations.alembic_config(url)
        data_revisions = migrations.data_revisions(cfg)
        console.rule("1. the legacy table")
        legacy = _upgrade_until(cfg, engine, "user_settings")
        console.print(f"user_settings created by revision {legacy}")
        console.rule(f"2. seed {args.users:,} legacy users")
        console.print(render(seed_legacy(engine, args.users, args.seed)))
        console.rule(f"3. alembic upgrade head (data revision{'s' if len(data_revisions) != 1 else ''}"
                     f" {', '.join(data_revisions)})")
        migrations.upgrade(cfg, "head")
        console.rule("4. verification SQL")
        checks = verify.run(engine)
        failed = [c for c in checks if not c.ok]
        by_revision: dict[str, list] = {}
        for c in checks:
            by_revision.setdefault(c.revision, []).append(c)
        for rev, rev_checks in by_revision.items():
            bad = [c for c in rev_checks if not c.ok]
            console.print(f"revision {rev}: {len(rev_checks) - len(bad)} of {len(rev_checks)} checks ok")
            # The data revisions' checks are the ones a person reads; others only when they fail.
            for c in rev_checks if rev in data_revisions else bad:
                mark = "[green]ok  [/]" if c.ok else "[red]FAIL[/]"
                console.print(f"  {mark} {c.check_name}: {c.detail}", highlight=False)
        engine.dispose()
        console.rule("done")
        console.print(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
                      f" in {time.monotonic() - started:.1f}s overall")
        console.print(f"The data lives in {where}.")
        console.print(f"Look around: DATABASE_URL='{db.redact(url)}' orgmig status"
                      if explicit else f"Run `orgmig demo` again to start over; remove it with: {cleanup}")
        if explicit:
            console.print(f"Remove it with: {cleanup}")
        return 1 if failed else 0
    finally:
        if server is not None:
            server.stop()
