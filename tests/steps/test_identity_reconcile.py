"""`orgmig sync --dry-run` and `orgmig reconcile` before and after changes in the provider:
Okta's groups, Keycloak's and Auth0's organization roles; the next sync converges and reconcile
is clean again."""

from __future__ import annotations

import json

import pytest

from tests.support.db import execute
from tests.support.identity import (
    FAC_A2,
    Ids,
    cli,
    downgrade_restores,
    export,
    fingerprint,
    linked_user,
    reports,
    rows,
    state,
    synced_with_fake,
)
from tests.support.identity import group_name as g
from tests.support.migrate import failed_checks


def drift_by_user(out, ids: Ids) -> dict[str, dict]:
    found = json.loads(out.stdout)
    return {ids.neutral[u.pop("external_id")]: {k: v for k, v in u.items() if k not in ("row_id", "user_id")}
            for u in found["users"]}


def test_dry_run_and_reconcile_see_what_changed_in_okta_and_the_next_sync_converges(identity_databases,
                                                                                   identity_fake):
    provider = "okta"
    url, engine, fake, ids, tenant, group = synced_with_fake(identity_databases, identity_fake, provider)

    clean = cli(url, "reconcile", "--provider", provider)
    assert (clean.code, clean.stdout.splitlines()[-1]) == (0, "okta, export run 1: no drift")

    tenant.remove_member(group[g("A:FAC:A2")], "user-fac")  # a facility taken away
    tenant.set_status("locked", "SUSPENDED")
    tenant.remove_member(group[g("ADMINS")], "site-admin")
    tenant.add_member(group[g("B:USER")], "entry-nofac")  # a membership added
    tenant.remove_member(group[g("A:USER")], "multi-org")  # a role changed
    tenant.add_member(group[g("A:ENTRY_ONLY")], "multi-org")
    tenant.remove_member(group[g("A:ALL_FACILITIES")], "allfac-a")  # all facilities -> its one facility
    tenant.remove_member(group[g("B:ADMIN")], "deprovisioned")  # a membership removed
    tenant.delete_user("recovery")  # an account deleted: its user's rows are left as they are
    tenant.touch_user("admin-a", email=None)  # an email the IdP no longer has: the user's is kept
    # Not exported yet: the tables still agree with the latest finished snapshot.
    assert cli(url, "reconcile", "--provider", provider).code == 0
    export(url, provider, fake)
    before = fingerprint(engine)

    dry = cli(url, "sync", "--provider", provider, "--dry-run")
    assert dry.code == 0, dry.stderr[-3000:]
    assert dry.stdout.splitlines()[:2] == [
        "identity:okta: dry run of export run 2, nothing written",
        f"  {len(tenant.users)} accounts: 0 links to create, 0 users to create; memberships 1 to add, 2 to change,"
        " 1 to remove; facility access 1 to grant, 1 to remove; 2 users to change (1 status)"]
    assert "app_user_without_idp_account" in dry.stdout.splitlines()[2]
    assert "would be refused" not in dry.stdout
    assert fingerprint(engine) == before

    drift = cli(url, "reconcile", "--provider", provider, "--json")
    assert drift.code == 1, drift.stderr[-3000:]
    a, b = ids.org["A"], ids.org["B"]
    assert drift_by_user(drift, ids) == {
        "user-fac": {"facilities": [{"org": a, "facility": FAC_A2, "change": "remove"}]},
        "locked": {"status": {"status": "active", "idp_status": "disabled"}},
        "site-admin": {"site_admin": {"site_admin": True, "idp_site_admin": False}},
        "entry-nofac": {"orgs": [{"org": b, "change": "add", "idp_role": "user", "idp_all_facilities": False}]},
        "multi-org": {"orgs": [{"org": a, "change": "change", "role": "user", "idp_role": "entry_only"}]},
        "allfac-a": {"orgs": [{"org": a, "change": "change", "role": "user", "idp_role": "user",
                               "all_facilities": True, "idp_all_facilities": False}],
                     "facilities": [{"org": a, "facility": FAC_A2, "change": "add"}]},
        "deprovisioned": {"orgs": [{"org": b, "change": "remove", "role": "admin", "all_facilities": True}]},
    }
    text = cli(url, "reconcile", "--provider", provider)
    assert text.code == 1
    lines = text.stdout.splitlines()
    assert lines[-1] == "okta, export run 2: 7 users drift from the snapshot"
    assert any(f"org {b}: member as admin, the IdP gives no role" in line for line in lines)
    assert any("status active -> disabled" in line for line in lines)
    assert fingerprint(engine) == before

    out = cli(url, "sync", "--provider", provider)
    assert out.code == 0, out.stderr[-3000:]
    now = state(engine, ids)
    assert now["user-fac"].orgs == {"A": ("user", False, ("A1",))}
    assert (now["locked"].status, now["site-admin"].site_admin) == ("disabled", False)
    assert now["entry-nofac"].orgs == {"A": ("entry_only", False, ()), "B": ("user", False, ())}
    assert now["multi-org"].orgs == {"A": ("entry_only", False, ("A1",)), "B": ("admin", True, ())}
    assert now["allfac-a"].orgs == {"A": ("user", False, ("A2",))}
    assert now["deprovisioned"].orgs == {}
    assert now["recovery"].orgs == {"A": ("entry_only", False, ())}
    assert (now["admin-a"].matched_by, now["admin-a"].email) == ("email", "admin.a@example.com")
    assert rows(engine, """SELECT migrated, detail FROM orgmig_report WHERE step = 'identity:okta'
                           AND reason = 'app_user_without_idp_account' AND source_id = :u""",
                u=linked_user(engine, ids, "recovery")) == [
        (True, {"provider": "okta", "linked_account_gone": ids.user["recovery"]})]
    after = cli(url, "reconcile", "--provider", provider)
    assert (after.code, after.stdout.splitlines()[-1]) == (0, "okta, export run 2: no drift")
    assert failed_checks(engine) == []

    # Whatever the later syncs changed, the downgrade puts back the tables of before the first.
    downgrade_restores(url, engine, identity_databases.fingerprint(provider, "exported"))
    engine.dispose()


def _keycloak_changes(tenant) -> None:
    tenant.set_roles("org-front", ["front-desk"])  # USER and front-desk -> front-desk (entry_only)
    tenant.remove_org_member("org-c", "org-admin")
    tenant.set_roles("org-norole", ["clinic-manager"])  # -> admin of org D
    tenant.set_status("locked", "SUSPENDED")  # enabled=false


def _auth0_changes(tenant) -> None:
    tenant.set_org_member("org-d", "org-mapped", ["USER"])  # front-desk (entry_only) -> USER
    tenant.remove_org_member("org-c", "org-admin")
    tenant.set_org_member("org-d", "org-norole", ["clinic-manager"])  # -> admin through ORGMIG_ROLE_MAP
    tenant.set_status("suspended", "ACTIVE")  # unblocked


@pytest.mark.parametrize("provider", ["keycloak", "auth0"])
def test_reconcile_sees_organization_roles_change_and_is_clean_after_the_next_sync(identity_databases,
                                                                                   identity_fake, provider):
    url, engine = identity_databases.open(provider, "exported")
    fake = identity_fake(provider)
    ids = Ids(provider, fake)
    first = cli(url, "sync", "--provider", provider)
    assert first.code == 0, first.stderr[-3000:]
    assert cli(url, "reconcile", "--provider", provider).code == 0
    (_keycloak_changes if provider == "keycloak" else _auth0_changes)(fake.tenant)
    if provider == "auth0":  # Auth0 has no say in site admins: the application's flag stays
        execute(engine, 'UPDATE "user" SET is_site_admin = true WHERE id = :u', u=linked_user(engine, ids, "org-front"))
    export(url, provider, fake)

    drift = cli(url, "reconcile", "--provider", provider, "--json")
    assert drift.code == 1, drift.stderr[-3000:]
    c, d = ids.org["C"], ids.org["D"]
    expected = {
        "org-admin": {"orgs": [{"org": c, "change": "remove", "role": "admin", "all_facilities": True}]},
        "org-norole": {"orgs": [{"org": d, "change": "add", "idp_role": "admin", "idp_all_facilities": True}]},
    }
    if provider == "keycloak":
        expected["org-front"] = {"orgs": [{"org": d, "change": "change", "role": "user", "idp_role": "entry_only"}]}
        expected["locked"] = {"status": {"status": "active", "idp_status": "disabled"}}
    else:
        expected["org-mapped"] = {"orgs": [{"org": d, "change": "change", "role": "entry_only", "idp_role": "user"}]}
        expected["suspended"] = {"status": {"status": "disabled", "idp_status": "active"}}
    assert drift_by_user(drift, ids) == expected

    out = cli(url, "sync", "--provider", provider)
    assert out.code == 0, out.stderr[-3000:]
    now = state(engine, ids)
    assert now["org-admin"].orgs == {}
    assert now["org-norole"].orgs == {"D": ("admin", True, ())}
    assert ("idp_user", "org-norole", "no_role_in_org") not in reports(engine, ids)
    if provider == "keycloak":
        assert (now["org-front"].orgs, now["locked"].status) == ({"D": ("entry_only", False, ())}, "disabled")
    else:
        assert now["org-mapped"].orgs["D"] == ("user", False, ())
        assert now["suspended"].status == "active"
        assert now["org-front"].site_admin is True
    clean = cli(url, "reconcile", "--provider", provider, "--json")
    assert (clean.code, json.loads(clean.stdout)["users"]) == (0, [])
    assert failed_checks(engine) == []
    engine.dispose()


def test_a_sync_analyzes_a_snapshot_that_has_no_statistics(identity_databases, identity_fake):
    """An export does not analyze the snapshot's tables, and autovacuum may not have: the sync's plan
    does, where they have no statistics (without them the comparison joins every account by nested
    loops: minutes where it takes a second)."""
    url, engine, fake, ids, tenant, group = synced_with_fake(identity_databases, identity_fake, "okta")
    snapshot = ("idp_group", "idp_membership", "idp_user")
    execute(engine, "DELETE FROM pg_statistic WHERE starelid IN ('idp_user'::regclass, 'idp_membership'::regclass,"
                    " 'idp_group'::regclass)")
    analyzed = "SELECT DISTINCT tablename FROM pg_stats WHERE tablename IN ('idp_group', 'idp_membership', 'idp_user')"
    assert rows(engine, analyzed) == []

    synced = cli(url, "sync", "--provider", "okta")
    assert synced.code == 0, synced.stderr[-3000:]
    assert sorted(r[0] for r in rows(engine, analyzed)) == list(snapshot)
    assert cli(url, "reconcile", "--provider", "okta").code == 0
    engine.dispose()
