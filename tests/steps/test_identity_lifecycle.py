"""The identity step over time: killed mid-run and resumed, an app edit made after the export
started, a truncated export against the mass-change guard, a downgrade the application's rows
refuse, the verification SQL after every sync and on tampered rows, and no finished export at all.
`orgmig sync --dry-run` and `orgmig reconcile` are in test_identity_reconcile.py."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy.pool import NullPool

from app.db import make_engine
from tests.support.db import execute, scalar
from tests.support.identity import (
    FAC_A2,
    Ids,
    alembic,
    alembic_process,
    cli,
    downgrade_restores,
    export,
    fingerprint,
    legacy_user,
    linked_user,
    org_id,
    reports,
    rows,
    start,
    state,
    synced_with_fake,
)
from tests.support.identity import group_name as g
from tests.support.migrate import failed_checks
from tests.support.waiting import wait_until


def kill_after_three_batches(url, engine) -> None:
    """`alembic upgrade head` killed (SIGKILL) once three of its batches of 8 accounts committed."""
    done = """SELECT count(*) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id
              WHERE r.step = 'identity:okta' AND b.status = 'succeeded'"""
    proc = alembic_process(url, "upgrade", "head", ORGMIG_PAUSE_MS="150", ORGMIG_BATCH_SIZE="8",
                           ORGMIG_WORKERS="1")
    wait_until(lambda: scalar(engine, done) >= 3, alive=proc, what="three batches finished")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("server_restarted", [False, True], ids=["killed", "killed-and-plan-lost"])
def test_a_killed_run_resumes_to_the_state_of_an_uninterrupted_one(identity_databases, server_restarted):
    provider = "okta"
    url, engine = identity_databases.open(provider, "exported")
    # An uninterrupted run's result: the template it was copied from (read only).
    reference = make_engine(identity_databases.template_url(provider, "synced"), poolclass=NullPool)
    ids = Ids(provider, start(provider))
    kill_after_three_batches(url, engine)
    if server_restarted:
        # A server restart empties UNLOGGED tables: the desired state the plan kept for the run,
        # and with it the accounts the run walks, is gone; the resumed run plans its work again.
        execute(engine, "TRUNCATE orgmig_identity_plan, orgmig_identity_plan_member, orgmig_identity_plan_run")

    partial = state(engine, ids)
    assert 0 < len(partial) < len(state(reference, ids))  # some accounts applied, not all
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0006"

    resumed = alembic(url, "upgrade", "head")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming run" in resumed.stderr
    assert ("computed again" in resumed.stderr) == server_restarted
    assert state(engine, ids) == state(reference, ids)
    assert reports(engine, ids) == reports(reference, ids)
    counts = 'SELECT (SELECT count(*) FROM "user"), (SELECT count(*) FROM org_user), (SELECT count(*) FROM org)'
    assert rows(engine, counts) == rows(reference, counts)
    assert failed_checks(engine) == []

    # The undo log the two runs left is as complete as one run's: the downgrade is exact.
    downgrade_restores(url, engine, identity_databases.fingerprint(provider, "exported"))
    engine.dispose()
    reference.dispose()


def test_an_app_user_holding_the_email_of_an_account_planned_a_new_user_is_matched_by_the_batch(
        identity_databases):
    """The plan found no app user for an account and planned a new one; the application creates a
    user with its email before the account's batch: the batch matches again, and links the
    account to that user by email instead of creating a second one."""
    provider = "okta"
    url, engine = identity_databases.open(provider, "exported")
    kill_after_three_batches(url, engine)
    account, email = rows(engine, """
        SELECT p.external_id, p.email FROM orgmig_identity_plan p
        WHERE p.provider = 'okta' AND p.problem = 'idp_user_without_app_user' AND p.email_verified
          AND p.email_norm IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM user_identity i WHERE i.provider = p.provider AND i.external_id = p.external_id)
          AND (SELECT count(*) FROM idp_user x
               WHERE x.provider = p.provider AND lower(btrim(x.email)) = p.email_norm) = 1
        ORDER BY p.row_id DESC LIMIT 1""")[0]
    execute(engine, """INSERT INTO "user" (keycloak_user_id, email, email_verified)
                       VALUES ('made-by-the-app', upper(:e), true)""", e=email)
    app_user = scalar(engine, """SELECT id FROM "user" WHERE keycloak_user_id = 'made-by-the-app'""")

    resumed = alembic(url, "upgrade", "head")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert rows(engine, "SELECT user_id, matched_by FROM user_identity WHERE provider = 'okta' AND external_id = :x",
                x=account) == [(app_user, "email")]
    assert scalar(engine, """SELECT count(*) FROM "user" WHERE lower(btrim(email)) = lower(:e)""", e=email) == 1
    assert failed_checks(engine) == []
    engine.dispose()


def test_an_app_edit_made_after_the_export_started_is_kept_and_reported(identity_databases, identity_fake):
    provider = "okta"
    url, engine, fake, ids, tenant, group = synced_with_fake(identity_databases, identity_fake, provider)
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
    downgrade_restores(url, engine, identity_databases.fingerprint(provider, "exported"))
    engine.dispose()


def test_a_truncated_export_trips_the_mass_change_guard_and_writes_nothing(identity_databases, identity_fake):
    provider = "okta"
    url, engine = identity_databases.open(provider, "synced")
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
    downgrade_restores(url, engine, identity_databases.fingerprint(provider, "exported"))
    engine.dispose()


def test_the_downgrade_refuses_while_the_application_built_on_created_rows(identity_databases):
    provider = "okta"
    url, engine = identity_databases.open(provider, "synced")
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
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0009"  # refused before any revision

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
    url, engine = identity_databases.open(provider, "synced")
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


def test_a_first_load_claims_bigger_batches_than_a_later_sync(identity_databases, identity_fake):
    # A first load (no account of the provider linked before the run) claims up to four times
    # ORGMIG_BATCH_SIZE a batch, fewer near the end; a later sync claims the configured size.
    # (Unsteered: a steered run alone on the database grows its batches by itself.)
    provider = "okta"
    url, engine = identity_databases.open(provider, "exported")
    sizes = """SELECT b.rows_read FROM orgmig_batch b
               WHERE b.run_id = (SELECT max(id) FROM orgmig_run WHERE step = 'identity:okta')"""
    proc = alembic(url, "upgrade", "head", ORGMIG_BATCH_SIZE="2", ORGMIG_STEER="off")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = [n for (n,) in rows(engine, sizes)]
    assert 2 < max(first) <= 8, first

    fake = identity_fake(provider)
    for key in ("recovery", "locked", "user-fac", "multi-org", "highest", "allfac-a"):
        fake.tenant.touch_user(key, first_name=f"Renamed {key}")
    export(url, provider, fake)
    out = cli(url, "sync", "--provider", provider, ORGMIG_BATCH_SIZE="2", ORGMIG_STEER="off")
    assert out.code == 0, out.stderr[-3000:]
    later = [n for (n,) in rows(engine, sizes)]
    assert len(later) >= 3 and max(later) <= 2, later
    assert failed_checks(engine) == []
    engine.dispose()
