"""`orgmig reconcile --provider P [--json]`: the drift between the org tables and the latest
finished snapshot of an identity provider, per user (orgs, roles, facilities, status, site
admin), under the rules a sync applies. Writes nothing.

Exit codes: 0 no drift, 1 drift, 2 configuration (no finished export, or one still running; a bad
setting)."""

from __future__ import annotations

import argparse
import json

from sqlalchemy.pool import NullPool

from app.batch import MigrationError
from app.cli.common import add_database_option, connected
from app.config import get_settings
from app.errors import ConfigError
from app.provider_names import PROVIDERS
from app.steps.identity import IdentitySync
from app.steps.identity.readonly import drift


def register(sub) -> None:
    p = sub.add_parser("reconcile", help="list where the org tables differ from an identity provider's snapshot",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", required=True, choices=PROVIDERS)
    p.add_argument("--json", action="store_true", help="print the drift as JSON")
    add_database_option(p)
    p.set_defaults(handler=handle)


def _line(user: dict) -> str:
    who = f"user {user['user_id']}" if "user_id" in user else "no user yet"
    parts = [user["link"]] if "link" in user else []
    for m in user.get("orgs", []):
        if m["change"] == "add":
            parts.append(f"org {m['org']}: not a member, IdP role {m.get('idp_role')}")
        elif m["change"] == "remove":
            parts.append(f"org {m['org']}: member as {m.get('role')}, the IdP gives no role")
        else:
            change = f"role {m.get('role')} -> {m.get('idp_role')}" if m.get("role") != m.get("idp_role") else ""
            if "idp_all_facilities" in m:
                change = (change + "; " if change else "") + \
                    f"all facilities {m['all_facilities']} -> {m['idp_all_facilities']}"
            parts.append(f"org {m['org']}: {change}")
    for f in user.get("facilities", []):
        parts.append(f"org {f['org']}: facility {f['facility']} " + ("missing" if f["change"] == "add" else "extra"))
    if "status" in user:
        parts.append(f"status {user['status']['status']} -> {user['status']['idp_status']}")
    if "site_admin" in user:
        parts.append(f"site admin {user['site_admin']['site_admin']} -> {user['site_admin']['idp_site_admin']}")
    if "profile" in user:
        parts.append("profile: " + ", ".join(user["profile"]))
    return f"{who} ({user['external_id']}): " + "; ".join(parts)


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine:
        try:
            found = drift(engine, IdentitySync(args.provider, get_settings()))
        except MigrationError as exc:  # an export still running: nothing to compare with, which is not drift
            raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps({"provider": found.provider, "export_run": found.export_id, "drift": bool(found.users),
                          "users": found.users}, default=str, indent=2))
    else:
        for user in found.users:
            print(_line(user))
        print(f"{args.provider}, export run {found.export_id}: "
              + (f"{len(found.users):,} users drift from the snapshot" if found.users else "no drift"))
    return 1 if found.users else 0
