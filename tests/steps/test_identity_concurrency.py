"""The identity step beside an application that edits the same rows: an admin edit that commits
while a sync waits for its row is the edit that wins, is reported, agrees with reconcile, and is
not recorded in the undo log as the sync's own."""

from __future__ import annotations

import threading

import psycopg

from app.ops.databases import libpq
from tests.support.db import LOCK_WAITERS, scalar
from tests.support.identity import Ids, cli, export, linked_user, rows
from tests.support.identity import group_name as g
from tests.support.waiting import wait_until


def test_an_admin_edit_committed_while_the_sync_waits_is_kept_and_reported(identity_databases, identity_fake):
    provider = "okta"
    url, engine = identity_databases.open(provider, "synced")
    fake = identity_fake(provider)
    ids = Ids(provider, fake)
    fake.tenant.touch_user("recovery", first_name="Renamed")  # the IdP renames the user
    fake.tenant.touch_user("locked", first_name="Lockwood")  # and another one, nobody edits that
    tenant = fake.tenant
    tenant.remove_member(tenant.group_by_name(g("A:USER")).id, "multi-org")  # a role in org A changed
    tenant.add_member(tenant.group_by_name(g("A:ENTRY_ONLY")).id, "multi-org")
    export(url, provider, fake)
    user, other = linked_user(engine, ids, "recovery"), linked_user(engine, ids, "locked")
    member = linked_user(engine, ids, "multi-org")
    org_a = scalar(engine, "SELECT id FROM org WHERE external_id = :x", x=ids.org["A"])

    # An admin's transaction renames the same user, makes the same membership admin, and stays
    # open while the sync starts.
    admin = psycopg.connect(libpq(url))
    admin.execute("""UPDATE "user" SET first_name = 'AdminDuring' WHERE id = %s""", (user,))
    admin.execute("""UPDATE org_user SET role_id = (SELECT id FROM role WHERE name = 'admin')
                     WHERE org_id = %s AND user_id = %s""", (org_a, member))
    outcome = {}
    sync = threading.Thread(target=lambda: outcome.setdefault(
        "sync", cli(url, "sync", "--provider", provider, ORGMIG_LOCK_TIMEOUT_MS="60000", ORGMIG_WORKERS="1")))
    sync.start()
    try:
        wait_until(lambda: scalar(engine, LOCK_WAITERS), alive=sync, every=0.02,
                   what="the sync's batch waiting for the admin's row")
        admin.commit()  # mid-batch
    finally:
        admin.close()
        sync.join(120)
    out = outcome["sync"]
    assert out.code == 0, out.stderr[-3000:]

    names = dict(rows(engine, 'SELECT id, first_name FROM "user" WHERE id IN (:a, :b)', a=user, b=other))
    assert names == {user: "AdminDuring", other: "Lockwood"}
    assert rows(engine, """SELECT r.name FROM org_user m JOIN role r ON r.id = m.role_id
                           WHERE m.org_id = :o AND m.user_id = :u""", o=org_a, u=member) == [("admin",)]
    edits = {r.source_id: r.detail for r in rows(engine, """
        SELECT source_id, detail FROM orgmig_report WHERE step = 'identity:okta' AND reason = 'app_edit_newer'""")}
    assert edits == {user: {"user": ["first_name"]}, member: {"memberships": [str(org_a)]}}
    # Reconcile agrees: the admin's value is the app's edit, not drift.
    clean = cli(url, "reconcile", "--provider", provider)
    assert (clean.code, clean.stdout.splitlines()[-1]) == (0, "okta, export run 2: no drift")
    # The undo log does not take the admin's value for the sync's: the row's updated_at is not
    # one the sync left, so a later sync and a downgrade still see the admin's edit.
    assert rows(engine, """SELECT u.updated_at IS DISTINCT FROM x.applied_updated_at FROM "user" u
                           LEFT JOIN orgmig_identity_undo x ON x.table_name = 'user' AND x.row_key = u.id::text
                           WHERE u.id = :u""", u=user) == [(True,)]
    assert rows(engine, """SELECT m.updated_at IS DISTINCT FROM x.applied_updated_at FROM org_user m
                           LEFT JOIN orgmig_identity_undo x
                                  ON x.table_name = 'org_user' AND x.row_key = m.org_id || '|' || m.user_id
                           WHERE m.org_id = :o AND m.user_id = :u""", o=org_a, u=member) == [(True,)]
    engine.dispose()
