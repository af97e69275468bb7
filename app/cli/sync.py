"""`orgmig sync --provider P [--dry-run] [--allow-mass-change]`: apply the latest finished export
of one identity provider with the code of revision 0007 (a later export than the one the
revision applied, say). `--dry-run` prints what would change and writes nothing.

Exit codes: 0 applied (or the dry run printed), 1 the sync failed or was refused (the mass-change
guard says why), 2 configuration (no finished export, a bad setting)."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.pool import NullPool

from app.batch import Options, run_step
from app.batch.revision import migration_lock
from app.batch.summary import format_summary
from app.cli.common import add_database_option, connected
from app.config import with_overrides
from app.errors import ConfigError
from app.provider_names import PROVIDERS
from app.steps.identity import IdentitySync, describe_plan
from app.steps.identity.check import dry_run


def register(sub) -> None:
    p = sub.add_parser("sync", help="apply the latest finished export of an identity provider to the org schema",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", required=True, choices=PROVIDERS)
    p.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    p.add_argument("--allow-mass-change", action="store_true",
                   help="apply even when more than ORGMIG_MAX_REMOVED_FRACTION of the linked users would be"
                        " disabled or lose memberships")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = with_overrides({"allow_mass_change": "true"} if args.allow_mass_change else {}, source="option")
    step = IdentitySync(args.provider, settings)
    with connected(args, poolclass=NullPool) as engine:
        if args.dry_run:
            plan = dry_run(engine, step)
            if plan.export_id is None:
                raise ConfigError(f"{args.provider} has no finished export: run `orgmig export --provider"
                                  f" {args.provider}` first")
            print(f"{step.name}: dry run of export run {plan.export_id}, nothing written")
            print(f"  {describe_plan(plan.counts)}")
            print("  reported: " + (", ".join(f"{n:,} {r}" for r, n in plan.reported.items()) or "none"))
            linked, changed = plan.counts["linked"], plan.counts["mass_changed"]
            if changed and linked and changed > settings.max_removed_fraction * linked:
                print(f"  the sync would be refused: {changed:,} of {linked:,} linked users disabled or losing"
                      f" memberships (more than ORGMIG_MAX_REMOVED_FRACTION={settings.max_removed_fraction:g})"
                      + ("; --allow-mass-change given" if settings.allow_mass_change else ""))
            return 0
        with engine.connect() as lock_conn, migration_lock(lock_conn):
            if step.export(lock_conn) is None:
                raise ConfigError(f"{args.provider} has no finished export: run `orgmig export --provider"
                                  f" {args.provider}` first")
            lock_conn.commit()
            result = run_step(engine, step, "upgrade", Options.from_settings(settings),
                              resume=f"`orgmig sync --provider {args.provider}`")
    print(format_summary(result), file=sys.stderr)
    return 0
