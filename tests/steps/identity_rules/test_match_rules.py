"""rules.match, on a few rows: an account is linked to the one app user holding its email only
where the provider marks the email verified and no other account (nor app user) holds it; for
Keycloak the user its subject names comes first; a user this run linked already is no
candidate. The login endpoint runs the same rule (state.match)."""

from __future__ import annotations

MATCH = """
SELECT b.external_id, mt.user_id, mt.matched_by, mt.problem
FROM (SELECT u.external_id, nullif(lower(btrim(u.email)), '') AS email_norm,
             coalesce(u.email_verified, false) AS email_verified
      FROM idp_user u WHERE u.provider = :provider) b
{match}
ORDER BY 1"""


def account(rules, provider: str, external_id: str, email: str | None, verified: bool = True) -> None:
    rules.exec("INSERT INTO idp_user (provider, external_id, email, email_verified, status, raw, first_seen_run_id,"
               " last_seen_run_id) VALUES (:p, :x, :e, :v, 'ACTIVE', '{}', 1, 1)",
               p=provider, x=external_id, e=email, v=verified)


def app_user(rules, email: str | None, keycloak_user_id: str | None = None) -> int:
    return rules.conn.exec_driver_sql(
        """INSERT INTO "user" (keycloak_user_id, email) VALUES (coalesce(%(k)s, 'legacy-' || gen_random_uuid()),"""
        " %(e)s) RETURNING id", {"k": keycloak_user_id, "e": email}).scalar_one()


def match(rules, provider: str = "okta", **params) -> dict:
    return {r.external_id: (r.user_id, r.matched_by, r.problem) for r in rules.rule(MATCH, provider, **params)}


def test_a_verified_email_held_by_one_app_user_and_one_account_links_by_email(rules):
    ann = app_user(rules, "Ann@Example.org")
    account(rules, "okta", "a1", "  ann@example.ORG ")
    assert match(rules) == {"a1": (ann, "email", None)}


def test_an_unverified_email_held_by_one_app_user_links_nothing(rules):
    app_user(rules, "ann@example.org")
    account(rules, "okta", "a1", "ann@example.org", verified=False)
    assert match(rules) == {"a1": (None, None, "email_unverified")}


def test_an_email_held_by_two_accounts_or_two_app_users_is_ambiguous(rules):
    app_user(rules, "ann@example.org")
    account(rules, "okta", "a1", "ann@example.org")
    account(rules, "okta", "a2", "ANN@example.org")  # two accounts of the provider hold it
    app_user(rules, "bob@example.org")
    app_user(rules, " Bob@Example.org")
    account(rules, "okta", "b1", "bob@example.org")  # two app users hold it
    assert match(rules) == {"a1": (None, None, "email_ambiguous"), "a2": (None, None, "email_ambiguous"),
                            "b1": (None, None, "email_ambiguous")}


def test_an_email_no_app_user_holds_is_no_match(rules):
    account(rules, "okta", "a1", "new@example.org")
    account(rules, "okta", "a2", None)
    assert match(rules) == {"a1": (None, None, "idp_user_without_app_user"),
                            "a2": (None, None, "idp_user_without_app_user")}


def test_keycloak_matches_by_subject_first_and_okta_never_does(rules):
    kc = app_user(rules, "other@example.org", keycloak_user_id="k1")
    account(rules, "keycloak", "k1", "ann@example.org")
    account(rules, "okta", "k1", None)
    assert match(rules, "keycloak") == {"k1": (kc, "subject", None)}
    assert match(rules, "okta") == {"k1": (None, None, "idp_user_without_app_user")}


def test_a_user_linked_to_another_account_or_by_this_run_is_not_taken(rules):
    ann = app_user(rules, "ann@example.org")
    account(rules, "okta", "a1", "ann@example.org")
    rules.exec("INSERT INTO user_identity (provider, external_id, user_id, matched_by) VALUES ('okta', 'old', :u,"
               " 'email')", u=ann)
    assert match(rules) == {"a1": (None, None, "email_ambiguous")}  # linked elsewhere: never guessed
    rules.exec("INSERT INTO orgmig_identity_undo (provider, table_name, row_key, user_id, run_id)"
               " VALUES ('okta', 'user_identity', 'okta|old', :u, 42)", u=ann)
    # a link this run (42) made: its user is no candidate for a later batch's account, as the
    # dry run, which saw the tables before the run, did not count it either
    assert match(rules, run_id=42) == {"a1": (None, None, "idp_user_without_app_user")}
