"""The identity step over time: killed mid-run and resumed, an app edit made after the export
started, a truncated export against the mass-change guard, `orgmig sync --dry-run`, `orgmig
reconcile` before and after changes in the provider, a downgrade the application's rows refuse,
and the verification SQL after every sync and on tampered rows."""

from __future__ import annotations

import json
import signal
import time

import pytest
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import verify
from tests.support.db import execute, scalar
from tests.support.identity import (
    FAC_A2,
    Ids,
    alembic,
    alembic_process,
    cli,
    export,
    fingerprint,
    reports,
    rows,
    start,
    state,
)
from tests.support.identity import group_name as g


def failed_checks(engine) -> list[str]:
    return [f"{c.revision} {c.check_name}: {c.detail}" for c in verify.run(engine) if not c.ok]


def legacy_user(engine, ids: Ids, label: str) -> int:
    """The id of the app user made from the legacy row LEGACY names `label`."""
    kc = next(k for k, v in ids.legacy.items() if v == label)
    return scalar(engine, 'SELECT id FROM "user" WHERE keycloak_user_id = :k', k=kc)


def linked_user(engine, ids: Ids, key: str) -> int:
    return scalar(engine, "SELECT user_id FROM user_identity WHERE provider = :p AND external_id = :x",
                  p=ids.provider, x=ids.user[key])


def org_id(engine, ids: Ids, letter: str) -> str:
    return str(scalar(engine, "SELECT id FROM org WHERE external_id = :x", x=ids.org[letter]))


def test_a_killed_run_resumes_to_the_state_of_an_uninterrupted_one(identity_databases):
    provider = "okta"
    url = identity_databases.get(provider, "exported")
    # An uninterrupted run's result: the template it was copied from (read only).
    reference = make_engine(identity_databases.template_url(provider, "synced"), poolclass=NullPool)
    engine = make_engine(url, poolclass=NullPool)
    ids = Ids(provider, start(provider))
    done = """SELECT count(*) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id
              WHERE r.step = 'identity:okta' AND b.status = 'succeeded'"""

    proc = alembic_process(url, "upgrade", "head", ORGMIG_PAUSE_MS="150", ORGMIG_BATCH_SIZE="8",
                           ORGMIG_WORKERS="1")
    deadline = time.monotonic() + 60
    while scalar(engine, done) < 3:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no batch finished within a minute"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    partial = state(engine, ids)
    assert 0 < len(partial) < len(state(reference, ids))  # some accounts applied, not all
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0006"

    resumed = alembic(url, "upgrade", "head")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming run" in resumed.stderr
    assert state(engine, ids) == state(reference, ids)
    assert reports(engine, ids) == reports(reference, ids)
    counts = 'SELECT (SELECT count(*) FROM "user"), (SELECT count(*) FROM org_user), (SELECT count(*) FROM org)'
    assert rows(engine, counts) == rows(reference, counts)
    assert failed_checks(engine) == []

    # The undo log the two runs left is as complete as one run's: the downgrade is exact.
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == identity_databases.fingerprint(provider, "exported")
    engine.dispose()
    reference.dispose()


def test_an_app_edit_made_after_the_export_started_is_kept_and_reported(identity_databases, identity_fake):
    provider = "okta"
    url = identity_databases.get(provider, "synced")
    engine = make_engine(url, poolclass=NullPool)
    fake = identity_fake(provider)
    ids = Ids(provider, fake)
    tenant = fake.tenant
    group = {gr.name: gr.id for gr in tenant.groups.values()}
    # Before the export starts, an admin renames a user: the IdP's name wins again.
    execute(engine, """UPDATE "user" SET first_name = 'Rico' WHERE id = :u""", u=linked_user(engine, ids, "recovery"))
    # In the IdP: a user suspended, a role changed, a facility taken away.
    tenant.set_status("locked", "SUSPENDED")
    tenant.remove_member(group[g("A:USER")], "multi-org")
    tenant.add_member(group[g("A:ENTRY_ONLY")], "multi-org")
    tenant.remove_member(group[g("A:FAC:A2")], "user-fac")
    export(url, provider, fake)
    # After the export started, the application edits the same user, membership, and access.
    locked, multi, fac = (linked_user(engine, ids, k) for k in ("locked", "multi-org", "fac-invalid"))
    a = org_id(engine, ids, "A")
    execute(engine, """UPDATE "user" SET first_name = 'Lockie' WHERE id = :u""", u=locked)
    execute(engine, """UPDATE org_user SET role_id = (SELECT id FROM role WHERE name = 'admin')
                       WHERE user_id = :u AND org_id = :o""", u=multi, o=a)
    execute(engine, "INSERT INTO org_user_facility (org_id, user_id, facility_id) VALUES (:o, :u, :f)",
            o=a, u=fac, f=FAC_A2)

    for _ in range(2):  # the same export again: still the app's values, still reported
        out = cli(url, "sync", "--provider", provider)
        assert out.code == 0, out.stderr[-3000:]
        now = state(engine, ids)
        assert (now["locked"].status, now["multi-org"].orgs["A"], now["fac-invalid"].orgs["A"]) == (
            "active", ("admin", False, ("A1",)), ("user", False, ("A2",)))
        assert now["user-fac"].orgs["A"] == ("user", False, ("A1",))  # not edited in the app: the IdP's
        assert rows(engine, 'SELECT first_name FROM "user" WHERE id IN (:a, :b) ORDER BY id = :a DESC',
                    a=locked, b=linked_user(engine, ids, "recovery")) == [("Lockie",), ("Recovery",)]
        edits = {r.source_id: (r.migrated, r.detail) for r in rows(engine, """
            SELECT source_id, migrated, detail FROM orgmig_report
            WHERE step = 'identity:okta' AND reason = 'app_edit_newer'""")}
        assert edits == {locked: (True, {"user": ["status", "first_name"]}),
                         multi: (True, {"memberships": [a]}),
                         fac: (True, {"facilities": [FAC_A2]})}
        assert failed_checks(engine) == []

    # A newer export, started after those edits, is applied over them.
    export(url, provider, fake)
    out = cli(url, "sync", "--provider", provider)
    assert out.code == 0, out.stderr[-3000:]
    now = state(engine, ids)
    assert (now["locked"].status, now["multi-org"].orgs["A"], now["fac-invalid"].orgs["A"]) == (
        "disabled", ("entry_only", False, ("A1",)), ("user", False, ()))
    assert not any(r[2] == "app_edit_newer" for r in reports(engine, ids))
    assert failed_checks(engine) == []

    # Whatever the later syncs changed, the downgrade puts back the tables of before the first.
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == identity_databases.fingerprint(provider, "exported")
    engine.dispose()


def test_a_truncated_export_trips_the_mass_change_guard_and_writes_nothing(identity_databases, identity_fake):
    provider = "okta"
    url = identity_databases.get(provider, "synced")
    engine = make_engine(url, poolclass=NullPool)
    fake = identity_fake(provider)
    ids = Ids(provider, fake)
    tenant = fake.tenant
    # The export comes back without the members of org A's ADMIN and USER groups.
    for short in ("A:ADMIN", "A:USER"):
        gid = tenant.group_by_name(g(short)).id
        for user in tenant.members(gid):
            tenant.remove_member(gid, user)
    export(url, provider, fake)
    before = fingerprint(engine)
    # Every member of A by those groups loses the membership but `highest` (ENTRY_ONLY too).
    losing = {k for k, a in state(engine, ids).items() if a.orgs.get("A", ("",))[0] in ("admin", "user")}
    losing -= {"highest"}
    linked = scalar(engine, "SELECT count(*) FROM user_identity WHERE provider = 'okta'")
    assert len(losing) > 0.2 * linked

    refused = cli(url, "sync", "--provider", provider)
    assert refused.code == 1
    assert "refusing to apply the export" in refused.stderr and "Nothing was written" in refused.stderr
    assert f"remove memberships of {len(losing)}" in refused.stderr
    assert fingerprint(engine) == before

    dry = cli(url, "sync", "--provider", provider, "--dry-run")
    assert dry.code == 0
    assert f"the sync would be refused: {len(losing)} of {linked} linked users" in dry.stdout
    assert fingerprint(engine) == before

    allowed = cli(url, "sync", "--provider", provider, "--allow-mass-change")
    assert allowed.code == 0, allowed.stderr[-3000:]
    now = state(engine, ids)
    assert [k for k in losing if "A" in now[k].orgs] == []
    assert now["highest"].orgs["A"] == ("entry_only", False, ("A1",))
    assert now["multi-org"].orgs == {"B": ("admin", True, ())}
    assert ("idp_user", "allfac-a", "no_role_in_org") in reports(engine, ids)  # ALL_FACILITIES and a facility left
    assert failed_checks(engine) == []

    # Disabling too many users trips it too; a larger ORGMIG_MAX_REMOVED_FRACTION lets it pass.
    suspended = [f"filler-{i:03d}" for i in range(60)]
    for key in suspended:
        tenant.set_status(key, "SUSPENDED")
    export(url, provider, fake)
    applied = fingerprint(engine)
    refused = cli(url, "sync", "--provider", provider)
    assert refused.code == 1
    assert (f"it would disable 60 linked users, remove memberships of 0 and site-admin rights of 0, together 60 of"
            f" {linked}") in refused.stderr
    assert fingerprint(engine) == applied
    allowed = cli(url, "sync", "--provider", provider, ORGMIG_MAX_REMOVED_FRACTION="0.5")
    assert allowed.code == 0, allowed.stderr[-3000:]
    now = state(engine, ids)
    assert {now[k].status for k in suspended} == {"disabled"}
    assert now["filler-000"].orgs == {}  # it lost its A membership before; B's are kept while disabled
    assert now["filler-001"].orgs == {"B": ("entry_only", False, ("B1",))}
    assert failed_checks(engine) == []
    # Users disabled already are not disabled again: other changes to them pass the guard.
    for key in suspended:
        tenant.touch_user(key, first_name="Renamed")
    export(url, provider, fake)
    renamed = cli(url, "sync", "--provider", provider)
    assert renamed.code == 0, renamed.stderr[-3000:]
    assert rows(engine, """SELECT count(*) FROM "user"
                           WHERE first_name = 'Renamed' AND status = 'disabled'""") == [(60,)]

    # Whatever the later syncs changed, the downgrade puts back the tables of before the first.
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == identity_databases.fingerprint(provider, "exported")
    engine.dispose()


def drift_by_user(out, ids: Ids) -> dict[str, dict]:
    found = json.loads(out.stdout)
    return {ids.neutral[u.pop("external_id")]: {k: v for k, v in u.items() if k not in ("row_id", "user_id")}
            for u in found["users"]}


def test_dry_run_and_reconcile_see_what_changed_in_okta_and_the_next_sync_converges(identity_databases,
                                                                                   identity_fake):
    provider = "okta"
    url = identity_databases.get(provider, "synced")
    engine = make_engine(url, poolclass=NullPool)
    fake = identity_fake(provider)
    ids = Ids(provider, fake)
    tenant = fake.tenant
    group = {gr.name: gr.id for gr in tenant.groups.values()}

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
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == identity_databases.fingerprint(provider, "exported")
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
    url = identity_databases.get(provider, "exported")
    engine = make_engine(url, poolclass=NullPool)
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


def test_the_downgrade_refuses_while_the_application_built_on_created_rows(identity_databases):
    provider = "okta"
    url = identity_databases.get(provider, "synced")
    engine = make_engine(url, poolclass=NullPool)
    ids = Ids(provider, start(provider))
    created_user = linked_user(engine, ids, "entry-nofac")
    # The application gives a user the step created settings, and adds an app-only user to an
    # org the step created.
    execute(engine, "INSERT INTO settings (user_id, language) VALUES (:u, 'de')", u=created_user)
    execute(engine, """INSERT INTO org_user (org_id, user_id, role_id)
                       VALUES (:o, :u, (SELECT id FROM role WHERE name = 'user'))""",
            o=org_id(engine, ids, "A"), u=legacy_user(engine, ids, "legacy-app-only"))
    before = fingerprint(engine)

    refused = alembic(url, "downgrade", "0006")
    assert refused.returncode != 0
    assert "refusing to downgrade identity:okta" in refused.stderr
    assert "1 settings rows of created users" in refused.stderr
    assert "1 org_user rows the application added to created orgs" in refused.stderr
    assert "allow_data_loss=true" in refused.stderr
    assert fingerprint(engine) == before
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0008"  # refused before any revision

    done = alembic(url, "-x", "allow_data_loss=true", "downgrade", "0006")
    assert done.returncode == 0, done.stderr[-3000:]
    # Those rows went with the rows they were built on; everything else is as before the upgrade.
    assert fingerprint(engine) == identity_databases.fingerprint(provider, "exported")

    # And the upgrade after that downgrade ends where the first one did.
    again = alembic(url, "upgrade", "head")
    assert again.returncode == 0, again.stderr[-3000:]
    reference = make_engine(identity_databases.template_url(provider, "synced"), poolclass=NullPool)
    assert (state(engine, ids), reports(engine, ids)) == (state(reference, ids), reports(reference, ids))
    reference.dispose()
    engine.dispose()


def test_the_verification_fails_on_tampered_rows(identity_databases):
    provider = "okta"
    url = identity_databases.get(provider, "synced")
    engine = make_engine(url, poolclass=NullPool)
    ids = Ids(provider, start(provider))
    assert failed_checks(engine) == []
    user_fac, multi = linked_user(engine, ids, "user-fac"), linked_user(engine, ids, "multi-org")
    a = org_id(engine, ids, "A")

    execute(engine, """UPDATE org_user SET role_id = (SELECT id FROM role WHERE name = 'admin')
                       WHERE org_id = :o AND user_id = :u""", o=a, u=user_fac)
    assert failed_checks(engine) == [
        f"0007 memberships agree with SimpleReport's groups: 1 users differ (first user ids: {{{user_fac}}})"]
    execute(engine, "DELETE FROM org_user_facility WHERE org_id = :o AND user_id = :u", o=a, u=multi)
    assert failed_checks(engine) == [
        f"0007 memberships agree with SimpleReport's groups: 2 users differ (first user ids:"
        f" {{{min(user_fac, multi)},{max(user_fac, multi)}}})"]
    execute(engine, """UPDATE "user" SET status = 'disabled', is_site_admin = true WHERE id = :u""", u=user_fac)
    failed = {line.split(":")[0] for line in failed_checks(engine)}
    assert failed == {"0007 memberships agree with SimpleReport's groups", "0007 linked users have the IdP's status",
                      "0007 linked users have the IdP's site-admin flag"}

    # An export started after the snapshot that was applied and never finished: no sync applies a mix.
    execute(engine, "INSERT INTO idp_export_run (provider, mode, status) VALUES ('okta', 'full', 'running')")
    out = cli(url, "sync", "--provider", provider)
    assert out.code == 1
    assert "is not finished" in out.stderr
    out = cli(url, "reconcile", "--provider", provider, "--json")  # exit 1 would say "drift"
    assert (out.code, out.stdout) == (2, "")
    assert "is not finished" in out.stderr
    engine.dispose()


def test_without_a_finished_export_the_revision_does_nothing_and_says_so(identity_databases):
    url = identity_databases.empty()
    engine = make_engine(url, poolclass=NullPool)
    execute(engine, "INSERT INTO user_settings (keycloak_user_id, email) VALUES ('kc-1', 'one@example.com')")
    proc = alembic(url, "upgrade", "head")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no identity provider has a finished export: nothing to apply" in proc.stderr
    assert rows(engine, "SELECT count(*) FROM user_identity") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM orgmig_report WHERE step LIKE 'identity:%'") == [(0,)]
    assert rows(engine, 'SELECT keycloak_user_id, status, is_site_admin FROM "user"') == [("kc-1", "active", False)]
    assert failed_checks(engine) == []
    for args in (("sync",), ("sync", "--dry-run"), ("reconcile",)):
        out = cli(url, *args, "--provider", "okta")
        assert (out.code, out.stderr.strip()) == (
            2, "orgmig: okta has no finished export: run `orgmig export --provider okta` first")
    bad = cli(url, "reconcile", "--provider", "keycloak", ORGMIG_ROLE_MAP="clinic-manager=owner")
    assert bad.code == 2
    assert "ORGMIG_ROLE_MAP: 'clinic-manager=owner' is not idp_role=app_role" in bad.stderr
    engine.dispose()


def test_two_providers_apply_together_and_downgrade_together(identity_databases, identity_fake):
    """Okta's groups and Auth0's organizations in one database: the revision applies both (Okta
    first), a second round of syncs settles what one provider's new users mean to the other's
    reports, and the downgrade undoes Auth0 before Okta (whose users Auth0 may have linked)."""
    url = identity_databases.get("okta", "exported")
    engine = make_engine(url, poolclass=NullPool)
    export(url, "auth0", identity_fake("auth0"))
    before = fingerprint(engine)

    proc = alembic(url, "upgrade", "head")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identity:okta upgrade finished" in proc.stderr and "identity:auth0 upgrade finished" in proc.stderr
    assert failed_checks(engine) == []
    # A user Okta created for an account it had no app user for, which Auth0 then links by email.
    assert rows(engine, """SELECT i.provider, i.matched_by FROM user_identity i JOIN "user" u ON u.id = i.user_id
                           WHERE u.email = 'entry.nofac@example.com' ORDER BY 1""") == [
        ("auth0", "email"), ("okta", "created")]
    def sync_both() -> dict:
        for provider in ("okta", "auth0"):
            out = cli(url, "sync", "--provider", provider)
            assert out.code == 0, out.stderr[-3000:]
        return fingerprint(engine)

    settled = sync_both()
    assert sync_both() == settled
    assert failed_checks(engine) == []

    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert fingerprint(engine) == before
    engine.dispose()
