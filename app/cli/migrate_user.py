"""`orgmig migrate-user KEYCLOAK_USER_ID`: migrate one user's legacy row now, as the application
does at login (`app.migrate_user`), and print the app user id and personal org id as JSON.

Exit codes: 0 migrated (now or before), 1 not migratable (its legacy rows are reported, or there
are none), 2 configuration or connection."""

from __future__ import annotations

import argparse
import json

from sqlalchemy.pool import NullPool

from app.cli.common import add_database_option, connected
from app.steps.user_settings.login import migrate_user


def register(sub) -> None:
    p = sub.add_parser("migrate-user", help="migrate one user's legacy row now (the login path)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("keycloak_user_id", metavar="KEYCLOAK_USER_ID")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine, engine.connect() as conn:
        found = migrate_user(conn, args.keycloak_user_id)
    if found is None:
        print(json.dumps({"keycloak_user_id": args.keycloak_user_id, "migrated": False,
                          "why": "no migratable legacy row: see orgmig_report"}))
        return 1
    print(json.dumps({"app_user_id": found.user_id, "org_id": str(found.org_id),
                      "migrated_now": found.migrated_now}))
    return 0
