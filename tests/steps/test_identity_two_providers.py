"""A user linked to accounts at two providers: one provider owns the user's status and profile
values (ORGMIG_PROVIDER_PRIORITY, else the provider that linked the user first); the other's
differing value is reported as a conflict, not applied back and forth at every sync; each
provider's summary counts what its own run changed."""

from __future__ import annotations

import re

from sqlalchemy.pool import NullPool

from app.db import make_engine
from tests.support.db import scalar
from tests.support.identity import Ids, alembic, cli, export, rows


def user_of(engine, ids: Ids, key: str) -> int:
    return scalar(engine, "SELECT user_id FROM user_identity WHERE provider = :p AND external_id = :x",
                  p=ids.provider, x=ids.user[key])


def status(engine, user: int) -> str:
    return scalar(engine, 'SELECT status FROM "user" WHERE id = :u', u=user)


def summary_count(out, what: str) -> int:
    return int(re.search(rf"{what}: (\d+)", out.stderr).group(1))


def test_one_provider_owns_a_users_values_and_the_other_is_reported(identity_databases, identity_fake):
    url = identity_databases.get("okta", "exported")
    engine = make_engine(url, poolclass=NullPool)
    okta, auth0 = identity_fake("okta"), identity_fake("auth0")
    export(url, "auth0", auth0)
    up = alembic(url, "upgrade", "head")
    assert up.returncode == 0, up.stderr[-3000:]
    okta_ids, auth0_ids = Ids("okta", okta), Ids("auth0", auth0)
    user = user_of(engine, okta_ids, "locked")
    assert user == user_of(engine, auth0_ids, "locked")  # the same person at both

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
