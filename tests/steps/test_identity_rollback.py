"""Rolling the identity revisions back beside an application that kept working: what the
application changed after a sync wrote it is kept, or the downgrade refuses naming it; and every
refusal comes before any revision's downgrade changed anything."""

from __future__ import annotations

from tests.support.db import execute, scalar
from tests.support.identity import Ids, alembic, fingerprint, linked_user, rows, start


def changed_by_the_sync(engine, user: int) -> bool:
    return scalar(engine, """SELECT before IS NOT NULL FROM orgmig_identity_undo
                             WHERE table_name = 'user' AND row_key = :u""", u=str(user))


EDITED = 'SELECT * FROM "user" WHERE id IN (:a, :b, :c) ORDER BY id'


def version(engine) -> str:
    return scalar(engine, "SELECT string_agg(version_num, ',') FROM alembic_version")


def test_the_downgrade_keeps_what_the_application_changed_after_the_sync(identity_databases):
    provider = "okta"
    url, engine = identity_databases.open(provider, "synced")
    ids = Ids(provider, start(provider))
    disabled, renamed, moved = (linked_user(engine, ids, k) for k in ("highest", "multi-org", "user-fac"))
    assert all(changed_by_the_sync(engine, u) for u in (disabled, renamed, moved))
    # A membership the sync created with a role other than admin, so that making it admin is a
    # change (org ids are random: the first created membership may already be an admin's).
    created_member = rows(engine, """SELECT m.org_id, m.user_id
                                     FROM orgmig_identity_undo u
                                     JOIN org_user m ON m.org_id = CAST(split_part(u.row_key, '|', 1) AS uuid)
                                                    AND m.user_id = u.user_id
                                     JOIN role r ON r.id = m.role_id
                                     WHERE u.table_name = 'org_user' AND u.before IS NULL AND r.name <> 'admin'
                                     ORDER BY u.row_key LIMIT 1""")[0]
    # After the sync, the application disables a user, renames one, changes an email, and makes a
    # membership the sync created admin.
    execute(engine, """UPDATE "user" SET status = 'disabled' WHERE id = :u""", u=disabled)
    execute(engine, """UPDATE "user" SET first_name = 'Renamed', last_name = 'By App' WHERE id = :u""", u=renamed)
    execute(engine, """UPDATE "user" SET email = 'new.address@example.com' WHERE id = :u""", u=moved)
    execute(engine, """UPDATE org_user SET role_id = (SELECT id FROM role WHERE name = 'admin')
                       WHERE org_id = :o AND user_id = :u""", o=created_member[0], u=created_member[1])
    edited = rows(engine, EDITED, a=disabled, b=renamed, c=moved)
    before = fingerprint(engine)

    # The membership would be deleted with the application's change in it: refused, before any
    # revision changed anything (revision 0008's table is still there).
    refused = alembic(url, "downgrade", "0006")
    assert refused.returncode == 1, refused.stderr[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert "refusing to downgrade identity:okta" in line and "Nothing was changed" in line, line
    assert "1 memberships the sync created that the application changed since" in line, line
    assert fingerprint(engine) == before
    assert version(engine) == "0009"
    assert scalar(engine, "SELECT to_regclass('orgmig_writeback') IS NOT NULL")

    # The application takes the membership away again; now the downgrade runs and keeps the
    # application's values where the sync's would have been put back.
    execute(engine, "DELETE FROM org_user WHERE org_id = :o AND user_id = :u", o=created_member[0], u=created_member[1])
    down = alembic(url, "downgrade", "0006")
    assert down.returncode == 0, down.stderr[-3000:]
    assert "3 users" in down.stderr and "kept as the application changed them" in down.stderr, down.stderr[-3000:]
    assert rows(engine, EDITED, a=disabled, b=renamed, c=moved) == edited  # as the application left them
    assert scalar(engine, "SELECT count(*) FROM user_identity") == 0
    assert version(engine) == "0006"
    engine.dispose()


def test_a_refusal_of_revision_0006_comes_before_the_later_revisions_downgrade(identity_databases):
    provider = "okta"
    url, engine = identity_databases.open(provider, "synced")
    before = fingerprint(engine)

    # The application's own facilities (org B's) are in revision 0006's tables: refused at once.
    refused = alembic(url, "downgrade", "0005")
    assert refused.returncode == 1, refused.stderr[-3000:]
    predicted = refused.stderr.strip().splitlines()[-1]
    assert "refusing to downgrade 0006" in predicted and "2 facility" in predicted, predicted
    assert fingerprint(engine) == before
    assert version(engine) == "0009"
    assert scalar(engine, "SELECT to_regclass('orgmig_writeback') IS NOT NULL")

    # Once the identity data is undone, revision 0006 refuses with the same counts: the early
    # refusal counted what would be left.
    assert alembic(url, "downgrade", "0006").returncode == 0
    later = alembic(url, "downgrade", "0005")
    assert later.returncode == 1
    assert later.stderr.strip().splitlines()[-1] == predicted
    assert version(engine) == "0006"
    engine.dispose()
