"""`orgmig sync --provider P [--dry-run [--json]] [--allow-mass-change]`: apply the latest finished
export of one identity provider with the code of revision 0007 (a later export than the one the
revision applied, say). `--dry-run` prints what would change and writes nothing; with `--json`, the
same figures as one JSON object (docs/runbook.md has its shape).

Exit codes: 0 applied (or the dry run printed), 1 the sync failed or was refused (the mass-change
guard says why), 2 configuration (no finished export, a bad setting)."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.pool import NullPool

from app.batch import MigrationError, Options, format_summary, migration_lock, run_step
from app.cli.common import add_database_option, connected
from app.config import with_overrides
from app.errors import ConfigError
from app.provider_names import PROVIDERS
from app.steps.identity import IdentitySync, describe_plan, too_many_changed
from app.steps.identity.readonly import Plan, dry_run

# The plan's counts of what would change, as `describe_plan` prints them (the `changes` of --json).
CHANGES = ("accounts", "links_created", "users_created", "memberships_added", "memberships_changed",
           "memberships_removed", "facilities_added", "facilities_removed", "users_changed", "status_changes")


def register(sub) -> None:
    p = sub.add_parser("sync", help="apply the latest finished export of an identity provider to the org schema",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", required=True, choices=PROVIDERS)
    p.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: print what would change as JSON")
    p.add_argument("--allow-mass-change", action="store_true",
                   help="apply even when more than ORGMIG_MAX_REMOVED_FRACTION of the linked users would be"
                        " disabled or lose memberships")
    add_database_option(p)
    p.set_defaults(handler=handle)


def _mass_change(plan: Plan, step: IdentitySync) -> dict:
    """The mass-change guard's figures for this plan, and whether the sync would be refused (the
    guard itself decides: IdentitySync.guard)."""
    linked, changed = plan.counts["linked"], plan.counts["mass_changed"]
    try:
        step.guard(plan.counts)
        refused = False
    except MigrationError:
        refused = True
    return {"linked": linked, "disabled": plan.counts["disabled"],
            "losing_memberships": plan.counts["losing_memberships"],
            "losing_site_admin": plan.counts["losing_site_admin"], "changed": changed,
            "max_removed_fraction": step.settings.max_removed_fraction,
            "over_limit": too_many_changed(plan.counts, step.settings.max_removed_fraction),
            "allow_mass_change": step.settings.allow_mass_change, "refused": refused}


def _print_dry_run(plan: Plan, step: IdentitySync, as_json: bool) -> None:
    mass = _mass_change(plan, step)
    if as_json:
        print(json.dumps({"provider": plan.provider, "step": step.name, "export_run": plan.export_id,
                          "changes": {k: plan.counts[k] for k in CHANGES}, "reported": plan.reported,
                          "mass_change": mass}, indent=2))
        return
    print(f"{step.name}: dry run of export run {plan.export_id}, nothing written")
    print(f"  {describe_plan(plan.counts)}")
    print("  reported: " + (", ".join(f"{n:,} {r}" for r, n in plan.reported.items()) or "none"))
    if mass["over_limit"]:
        print(f"  the sync would be refused: {mass['changed']:,} of {mass['linked']:,} linked users disabled,"
              " losing memberships or site-admin rights (more than"
              f" ORGMIG_MAX_REMOVED_FRACTION={mass['max_removed_fraction']:g})"
              + ("; --allow-mass-change given" if mass["allow_mass_change"] else ""))


def handle(args: argparse.Namespace) -> int:
    if args.json and not args.dry_run:
        raise ConfigError("--json goes with --dry-run: `orgmig sync --provider P --dry-run --json`")
    settings = with_overrides({"allow_mass_change": "true"} if args.allow_mass_change else {}, source="option")
    step = IdentitySync(args.provider, settings)
    with connected(args, poolclass=NullPool) as engine:
        if args.dry_run:
            plan = dry_run(engine, step)
            if plan.export_id is None:
                raise ConfigError(f"{args.provider} has no finished export: run `orgmig export --provider"
                                  f" {args.provider}` first")
            _print_dry_run(plan, step, args.json)
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
