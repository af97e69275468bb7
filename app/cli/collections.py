"""`orgmig collections plan|migrate|import-anonymous`: re-key GeneNetwork's user collections in
Redis from the old account's id to the app's user id (docs/collections.md).

- `plan [--json]`: what would move where, per account, and what is reported; writes nothing.
- `migrate --user ID | --all [--purge-legacy]`: move (each account one atomic step; a repeat
  changes nothing); `--purge-legacy` then deletes the moved legacy values.
- `import-anonymous --anon-id A --user ID [--purge-legacy]`: an anonymous session's collections
  to a logged-in user; refused when A is a registered account's id.

Exit codes: 0 done (reported accounts are listed and recorded in orgmig_report), 1 the one account
asked for could not move (its reason is printed), 2 configuration, connection or a refused import.
"""

from __future__ import annotations

import argparse
import json

from sqlalchemy.pool import NullPool

from app import collections
from app.cli.common import add_database_option, connected, whole_number
from app.collections.reported import check_table
from app.numbers import plural

MAX_ID = 2**31 - 1  # "user".id is an integer


def register(sub) -> None:
    p = sub.add_parser("collections", help="re-key user collections in Redis from old account ids to app user ids",
                       description=__doc__.split("\n\n")[0])
    verbs = p.add_subparsers(dest="collections_command", metavar="ACTION")
    verbs.required = True

    plan = verbs.add_parser("plan", help="what would move where, and what is reported (writes nothing)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=handle_plan)

    migrate = verbs.add_parser("migrate", help="move the collections to the app user ids")
    which = migrate.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", metavar="ID", action=whole_number(1, MAX_ID),
                       help="the app user (\"user\".id) whose old account's collections move")
    which.add_argument("--all", action="store_true", help="every old account")
    migrate.set_defaults(handler=handle_migrate)

    anon = verbs.add_parser("import-anonymous", help="move an anonymous session's collections to an app user")
    anon.add_argument("--anon-id", required=True, metavar="A", help="the anonymous id (a field of `collections`)")
    anon.add_argument("--user", required=True, metavar="ID", action=whole_number(1, MAX_ID),
                      help="the app user (\"user\".id) receiving them")
    anon.set_defaults(handler=handle_import)

    for verb in (plan, migrate, anon):
        add_database_option(verb)
        verb.add_argument("--redis-url", metavar="URL",
                          help="the Redis holding the collections (default: REDIS_URL, else redis://127.0.0.1:6379/0)")
    for verb in (migrate, anon):
        verb.add_argument("--purge-legacy", action="store_true",
                          help="delete the legacy value once moved (only where it is still exactly what moved)")


def _line(d: dict) -> str:
    who = f"{d['status']:<9} {d['old_id']}"
    if d["status"] == "move":
        text = (f"{who} -> user {d['user_id']}: {plural(d['collections'], 'collection')},"
                f" {plural(d['members'], 'member')}")
        if d.get("already_there", -1) > 0:
            text += f"; the user has {d['already_there']:,} already ({d['id_overlap']:,} with the same id)"
        if d.get("already_there") == -1:
            text += "; the user's new value is not a JSON list (it will be reported)"
        if d.get("unparseable_timestamps"):
            text += f"; {d['unparseable_timestamps']} unparseable timestamps (moved as null)"
        return text
    if d["status"] == "done":
        return f"{who} -> user {d['user_id']}: moved already"
    if d["status"] == "anonymous":
        return f"{who}: {plural(d['collections'], 'collection')} (import-anonymous moves them)"
    extra = {k: _shortened(v) for k, v in d.items() if k not in ("old_id", "status", "reason")}
    return f"{who}: {d['reason']}" + (f" {json.dumps(extra, ensure_ascii=False)}" if extra else "")


LISTED = 5  # items of a list a plan line shows; --json has them all


def _shortened(value):
    if isinstance(value, list) and len(value) > LISTED:
        return [*value[:LISTED], f"and {len(value) - LISTED:,} more (--json lists them)"]
    return value


def handle_plan(args: argparse.Namespace) -> int:
    client = collections.connect(args.redis_url)
    with connected(args, poolclass=NullPool) as engine:
        found = collections.plan(client, engine)
    data = found.as_dict()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    for account in data["accounts"]:
        print(_line(account))
    c = data["counts"]
    print(f"plan: {plural(c['move'], 'account')} to move ({plural(c['collections_to_move'], 'collection')},"
          f" {plural(c['members_to_move'], 'member')}), {c['done']:,} moved already, {c['reported']:,} reported"
          + (" (" + ", ".join(f"{r} {n:,}" for r, n in data["reasons"].items()) + ")" if data["reasons"] else "")
          + f", {c['anonymous']:,} anonymous")
    return 0


def _summary(result: collections.Result) -> str:
    c = result.counts
    parts = [f"{plural(c['moved'], 'account')} moved ({plural(c['collections_added'], 'collection')} added,"
             f" {c['collections_already_there']:,} already there, {plural(c['id_clashes'], 'id clash', 'id clashes')})",
             f"{c['done']:,} moved before"]
    if c["reported"]:
        parts.append(f"{c['reported']:,} reported (" + ", ".join(f"{r} {n:,}" for r, n in result.reasons().items())
                     + ")")
    if c["anonymous"]:
        parts.append(f"{c['anonymous']:,} anonymous left for import-anonymous")
    if c["purged"] or c["purge_changed"]:
        parts.append(f"{c['purged']:,} legacy values purged"
                     + (f", {c['purge_changed']:,} kept (changed after the move)" if c["purge_changed"] else ""))
    rate = f"; {result.seconds:.1f} s ({result.accounts / result.seconds:,.0f} legacy fields/s)" \
        if result.seconds > 0.5 else ""
    return "collections: " + ", ".join(parts) + rate


def handle_migrate(args: argparse.Namespace) -> int:
    client = collections.connect(args.redis_url)
    with connected(args, poolclass=NullPool) as engine:
        if args.all:
            result = collections.migrate_all(client, engine, purge=args.purge_legacy)
        else:
            check_table(engine)
            with engine.begin() as conn:
                result = collections.migrate_for_user(conn, client, args.user, purge=args.purge_legacy)
    if not args.all:
        if result.counts["no_email"]:
            print(f"user {args.user} has no email: no old account can be matched")
        elif result.counts["no_old_account"]:
            print(f"user {args.user}: no old account holds the user's email; nothing to move")
        for r in result.reported:
            print(f"old account {r.old_id}: {r.reason}" + ("" if r.migrated else " (not moved)"))
    print(_summary(result))
    failed = any(not r.migrated for r in result.reported)
    return 1 if failed and not args.all else 0


def handle_import(args: argparse.Namespace) -> int:
    client = collections.connect(args.redis_url)
    with connected(args, poolclass=NullPool) as engine:
        check_table(engine)
        with engine.begin() as conn:
            result = collections.import_anonymous(conn, client, args.user, args.anon_id, purge=args.purge_legacy)
    c = result.counts
    if c["done"]:
        into = result.outcomes[0].user_id
        print(f"{args.anon_id}: imported before into user {into}; nothing added"
              + (f" (purged: {c['purged']})" if args.purge_legacy else ""))
        return 0 if into == args.user else 1
    if c["gone"]:
        print(f"{args.anon_id}: no anonymous collections; nothing to import")
        return 0
    for r in result.reported:
        print(f"{args.anon_id}: {r.reason}" + ("" if r.migrated else " (not imported)"))
    if c["moved"]:
        print(f"{args.anon_id} -> user {args.user}: {plural(c['collections_added'], 'collection')} added,"
              f" {c['collections_already_there']:,} already there, {c['id_clashes']:,} id clashes"
              + ("; legacy value purged" if c["purged"] else ""))
    return 0 if c["moved"] else 1
