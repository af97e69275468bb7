"""Linking an identity-provider account at login: only under the identity contract's rules
(docs/identity.md, "Matching an account to an app user"), on every provider. Each refusal links
nothing, answers 404 (nothing may be linked) or 409 (the user is another account's) with the
contract's reason, and leaves a `login:<provider>` report row."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.provider_names import PROVIDERS
from tests.service.serving import migrate, serving
from tests.support.db import execute, rows, scalar


@pytest.fixture
def engine(schema):
    return schema


@pytest.fixture
def base(engine):
    execute(engine, """INSERT INTO "user" (keycloak_user_id, email) VALUES
                       ('victim-kc', 'Victim@Example.org'), ('twin-1', 'twin@example.org'),
                       ('twin-2', 'TWIN@example.org '), ('shared-kc', 'shared@example.org'),
                       ('alone-kc', 'alone@example.org')""")
    with serving(engine.url) as url:
        yield url


def _snapshot(engine, provider: str, *accounts: tuple[str, str]) -> None:
    """The latest export of `provider` holds these (external id, email) accounts."""
    with engine.begin() as conn:
        run = conn.execute(text("""INSERT INTO idp_export_run (provider, mode, status, finished_at)
                                   VALUES (:p, 'full', 'finished', now()) RETURNING id"""), {"p": provider}).scalar()
        for external_id, email in accounts:
            conn.execute(text("""INSERT INTO idp_user (provider, external_id, email, email_verified, status, raw,
                                                       first_seen_run_id, last_seen_run_id)
                                 VALUES (:p, :x, :e, true, 'ACTIVE', '{}', :r, :r)"""),
                         {"p": provider, "x": external_id, "e": email, "r": run})


def _user(engine, keycloak_user_id: str) -> int:
    return scalar(engine, 'SELECT id FROM "user" WHERE keycloak_user_id = :k', k=keycloak_user_id)


def _links(engine, provider: str) -> int:
    return scalar(engine, "SELECT count(*) FROM user_identity WHERE provider = :p", p=provider)


def _reports(engine, provider: str) -> list[tuple[str, str, int]]:
    return rows(engine, """SELECT reason, source_table, source_id FROM orgmig_report WHERE step = :s
                           ORDER BY reason, source_table, source_id""", s=f"login:{provider}")


def _account(provider: str, name: str) -> str:
    return {"keycloak": f"{name}-0000-4000-8000-000000000000", "okta": f"00u{name}",
            "auth0": f"auth0|{name}"}[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unverified_email_links_nothing(base, engine, provider):
    """The takeover: an attacker signs up at the provider with the victim's address (an
    unverified database-connection signup) and the hook sends it."""
    attacker = _account(provider, "attacker")
    for body in ({"provider": provider, "external_id": attacker, "email": "victim@example.org"},
                 {"provider": provider, "external_id": attacker, "email": "victim@example.org",
                  "email_verified": False}):
        reply = migrate(base, body)
        assert reply.status_code == 404, reply.text
        assert reply.json()["reason"] == "email_unverified" and "app_user_id" not in reply.json()
    assert _links(engine, provider) == 0
    assert _reports(engine, provider) == [("email_unverified", "user", _user(engine, "victim-kc"))]
    # the owner, whose provider verified the address, is linked afterwards (Keycloak: the account
    # the user's keycloak_user_id names)
    owner_id = "victim-kc" if provider == "keycloak" else _account(provider, "owner")
    owner = migrate(base, {"provider": provider, "external_id": owner_id,
                           "email": "victim@example.org", "email_verified": True})
    assert owner.status_code == 200 and owner.json()["app_user_id"] == _user(engine, "victim-kc")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_email_two_app_users_hold_links_nothing(base, engine, provider):
    reply = migrate(base, {"provider": provider, "external_id": _account(provider, "twin"),
                           "email": "twin@example.org", "email_verified": True})
    assert reply.status_code == 404 and reply.json()["reason"] == "email_ambiguous"
    assert _links(engine, provider) == 0
    assert _reports(engine, provider) == [("email_ambiguous", "user", _user(engine, "twin-1"))]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_email_another_account_of_the_provider_holds_links_nothing(base, engine, provider):
    """The latest export has another account with this email: which of the two is the app user's
    is not for the login path to guess, whether or not the caller's account is in the export."""
    other, caller = _account(provider, "other"), _account(provider, "caller")
    _snapshot(engine, provider, (other, "Shared@example.org"), (caller, "shared@example.org"))
    reply = migrate(base, {"provider": provider, "external_id": caller, "email": "shared@example.org",
                           "email_verified": True})
    assert reply.status_code == 404 and reply.json()["reason"] == "email_ambiguous"
    newer = migrate(base, {"provider": provider, "external_id": _account(provider, "newer"),
                           "email": "shared@example.org", "email_verified": True})
    assert newer.status_code == 404 and newer.json()["reason"] == "email_ambiguous"
    assert _links(engine, provider) == 0
    caller_row = scalar(engine, "SELECT row_id FROM idp_user WHERE provider = :p AND external_id = :x",
                        p=provider, x=caller)
    assert _reports(engine, provider) == [("email_ambiguous", "idp_user", caller_row),
                                          ("email_ambiguous", "user", _user(engine, "shared-kc"))]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_user_another_account_names_is_not_taken(base, engine, provider):
    first_id = "alone-kc" if provider == "keycloak" else _account(provider, "first")
    first = migrate(base, {"provider": provider, "external_id": first_id,
                           "email": "alone@example.org", "email_verified": True})
    assert first.status_code == 200 and first.json()["app_user_id"] == _user(engine, "alone-kc")
    second = migrate(base, {"provider": provider, "external_id": _account(provider, "second"),
                            "email": "alone@example.org", "email_verified": True})
    assert second.status_code == 409 and second.json()["reason"] == "email_ambiguous"
    assert scalar(engine, "SELECT external_id FROM user_identity WHERE provider = :p", p=provider) == first_id
    # the first account keeps its user
    again = migrate(base, {"provider": provider, "external_id": first_id})
    assert again.status_code == 200 and again.json()["app_user_id"] == _user(engine, "alone-kc")


def test_keycloak_a_user_named_by_another_keycloak_id_is_that_accounts(base, engine):
    """The user's keycloak_user_id names another Keycloak account: a second account holding the
    same (verified) email is not given it, even before any export knows the first one."""
    reply = migrate(base, {"provider": "keycloak", "external_id": _account("keycloak", "intruder"),
                           "email": "victim@example.org", "email_verified": True})
    assert reply.status_code == 409 and "app_user_id" not in reply.json()
    assert _links(engine, "keycloak") == 0
    # the account the user names is linked by its subject
    owner = migrate(base, {"provider": "keycloak", "external_id": "victim-kc"})
    assert owner.status_code == 200 and owner.json()["app_user_id"] == _user(engine, "victim-kc")
    assert scalar(engine, "SELECT matched_by FROM user_identity WHERE external_id = 'victim-kc'") == "subject"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_email_is_compared_as_the_sync_compares_it(base, engine, provider):
    """The email the provider sends at login is taken by the sync's rule (rules.account_values):
    trimmed and in any case it is the app user's, and it links by email."""
    execute(engine, """INSERT INTO "user" (keycloak_user_id, email) VALUES ('okta|00uspaced', 'Spaced@Example.org')""")
    caller = _account(provider, "spaced")
    reply = migrate(base, {"provider": provider, "external_id": caller, "email": "  SPACED@example.ORG ",
                           "email_verified": True})
    assert reply.status_code == 200, reply.text
    assert reply.json()["app_user_id"] == _user(engine, "okta|00uspaced")
    assert rows(engine, "SELECT external_id, matched_by FROM user_identity WHERE provider = :p",
                p=provider) == [(caller, "email")]
