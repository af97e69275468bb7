"""`orgmig sync --dry-run` says exactly what the sync then does: on every provider's edge-case
tenant, and on a generated tenant synced into a fresh database (as a new user would), each count
of the dry run equals what the apply changed in the tables, and the reports it predicts are the
ones the apply writes, reason for reason."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.pool import NullPool

from app.db import make_engine
from tests.fakes.tenant import make_tenant
from tests.support.identity import cli, export, rows, start

USERS = 'SELECT id, status, email, email_verified, first_name, last_name, is_site_admin FROM "user"'
MEMBERS = "SELECT org_id, user_id, role_id, all_facilities FROM org_user"
ACCESS = "SELECT org_id, user_id, facility_id FROM org_user_facility"


def tables(engine) -> dict:
    return {"users": {r[0]: r[1:] for r in rows(engine, USERS)},
            "members": {r[:2]: r[2:] for r in rows(engine, MEMBERS)},
            "access": {tuple(r) for r in rows(engine, ACCESS)}}


def done(before: dict, after: dict, engine, provider: str) -> dict[str, int]:
    """What the apply changed, in the dry run's terms."""
    links = dict(rows(engine, "SELECT matched_by, count(*) FROM user_identity WHERE provider = :p GROUP BY 1",
                      p=provider))
    kept_users = before["users"].keys() & after["users"].keys()
    changed_users = [u for u in kept_users if before["users"][u] != after["users"][u]]
    old, new = before["members"], after["members"]
    return {
        "accounts": rows(engine, "SELECT count(*) FROM idp_user WHERE provider = :p", p=provider)[0][0],
        "links_created": links.get("subject", 0) + links.get("email", 0),
        "users_created": links.get("created", 0),
        "memberships_added": len(new.keys() - old.keys()),
        "memberships_changed": sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
        "memberships_removed": len(old.keys() - new.keys()),
        "facilities_added": len(after["access"] - before["access"]),
        "facilities_removed": len(before["access"] - after["access"]),
        "users_changed": len(changed_users),
        "status_changes": sum(1 for u in changed_users if before["users"][u][0] != after["users"][u][0]),
    }


def dry_run_then_apply(url, provider: str, batch_size: int) -> None:
    """The dry run's JSON, then the sync in small batches (a later batch sees what an earlier one
    wrote); what the sync changed and reported is what the dry run said."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        dry = cli(url, "sync", "--provider", provider, "--dry-run", "--json")
        assert dry.code == 0, dry.stderr[-3000:]
        predicted = json.loads(dry.stdout)
        before = tables(engine)

        applied = cli(url, "sync", "--provider", provider, ORGMIG_BATCH_SIZE=str(batch_size))
        assert applied.code == 0, applied.stderr[-3000:]

        assert done(before, tables(engine), engine, provider) == predicted["changes"]
        reported = dict(rows(engine, "SELECT reason, count(*) FROM orgmig_report WHERE step = :s GROUP BY reason",
                             s=f"identity:{provider}"))
        assert reported == predicted["reported"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("provider", ["okta", "keycloak", "auth0"])
def test_on_the_edge_case_tenant_the_dry_run_is_the_apply(identity_databases, provider):
    dry_run_then_apply(identity_databases.get(provider, "exported"), provider, 7)


@pytest.mark.parametrize("provider", ["okta", "keycloak", "auth0"])
def test_on_a_fresh_database_the_dry_run_is_the_apply(identity_databases, schema_template, provider):
    url = identity_databases.copy(schema_template)
    with start(provider, make_tenant(1500, 40, seed=7)) as fake:
        export(url, provider, fake)
    dry_run_then_apply(url, provider, 100)
