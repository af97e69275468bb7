"""A user linked to accounts at two providers: one provider owns the user's status and profile
values (ORGMIG_PROVIDER_PRIORITY, else the provider that linked the user first); the other's
differing value is reported as a conflict, not applied back and forth at every sync; each
provider's summary counts what its own run changed. And both applied by one upgrade, settled by a
second round of syncs, and undone by one downgrade."""

from __future__ import annotations

import re

from tests.support.db import scalar
from tests.support.identity import Ids, alembic, cli, downgrade_restores, export, fingerprint, linked_user, rows
from tests.support.migrate import failed_checks


def status(engine, user: int) -> str:
    return scalar(engine, 'SELECT status FROM "user" WHERE id = :u', u=user)


def summary_count(out, what: str) -> int:
    return int(re.search(rf"{what}: (\d+)", out.stderr).group(1))


def test_one_provider_owns_a_users_values_and_the_other_is_reported(identity_databases, identity_fake):
    url, engine = identity_databases.open("okta", "exported")
    okta, auth0 = identity_fake("okta"), identity_fake("auth0")
    export(url, "auth0", auth0)
    up = alembic(url, "upgrade", "head")
    assert up.returncode == 0, up.stderr[-3000:]
    okta_ids, auth0_ids = Ids("okta", okta), Ids("auth0", auth0)
    user = linked_user(engine, okta_ids, "locked")
    assert user == linked_user(engine, auth0_ids, "locked")  # the same person at both

    # Okta suspends the user; Auth0 still has the account active.
    okta.tenant.set_status("locked", "SUSPENDED")
    export(url, "okta", okta)
    for _ in range(2):
        for provider in ("okta", "auth0"):
            out = cli(url, "sync", "--provider", provider)
            assert out.code == 0, out.stderr[-3000:]
            assert status(engine, user) == "disabled", provider  # Okta linked the user first: Okta's
    assert rows(engine, """SELECT detail FROM orgmig_report
                           WHERE step = 'identity:auth0' AND reason = 'provider_conflict' AND source_id = :u""",
                u=user) == [({"owner": "okta", "columns": ["status"]},)]
    clean = cli(url, "reconcile", "--provider", "auth0")
    assert clean.code == 0, clean.stdout[-3000:]

    # With Auth0 first in ORGMIG_PROVIDER_PRIORITY, Auth0 owns the users of both, and its
    # summary counts the users its run changed (the undo log's rows of them are Okta's).
    renamed = ["filler-000", "filler-002", "filler-003"]
    for key in renamed:
        auth0.tenant.touch_user(key, first_name="Auth0Name")
    export(url, "auth0", auth0)
    out = cli(url, "sync", "--provider", "auth0", ORGMIG_PROVIDER_PRIORITY="auth0,okta")
    assert out.code == 0, out.stderr[-3000:]
    assert status(engine, user) == "active"
    assert rows(engine, """SELECT count(*) FROM "user" WHERE first_name = 'Auth0Name'""") == [(len(renamed),)]
    assert summary_count(out, "users changed") == len(renamed) + 1  # and the status of `locked`
    assert rows(engine, """SELECT count(*) FROM orgmig_report WHERE reason = 'provider_conflict'""") == [(0,)]
    engine.dispose()


def test_two_providers_apply_together_and_downgrade_together(identity_databases, identity_fake):
    """Okta's groups and Auth0's organizations in one database: the revision applies both (Okta
    first), a second round of syncs settles what one provider's new users mean to the other's
    reports, and the downgrade undoes Auth0 before Okta (whose users Auth0 may have linked)."""
    url, engine = identity_databases.open("okta", "exported")
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

    downgrade_restores(url, engine, before)
    engine.dispose()
