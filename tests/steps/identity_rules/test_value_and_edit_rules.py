"""rules.sql's other rules, each on a few rows: the role words an organization's member gets per
provider (Auth0's roles per membership, Keycloak's realm roles, the role map), the orgs the IdP
manages, the profile values compared (what the IdP does not have is not), an app edit, and the
provider that owns a user's values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

FAC = "f1000000-0000-4000-8000-000000000001"
GRP = f"""grp(provider, kind, external_id, meaning, org_external_id, role_name, facility_id) AS (VALUES
    ('{{p}}', 'organization', 'org-a', 'organization', 'org-a', NULL, CAST(NULL AS uuid)),
    ('{{p}}', 'group', 'g-admin', 'role', 'org-b', 'ADMIN', NULL),
    ('{{p}}', 'group', 'g-fac', 'facility', 'org-b', NULL, CAST('{FAC}' AS uuid)),
    ('{{p}}', 'group', 'g-site', 'site_admin', NULL, NULL, NULL),
    ('{{p}}', 'group', 'g-odd', 'unknown_role', 'org-c', 'SUPERUSER', NULL))"""


def role_words(rules, provider: str, members: list[tuple], role_map: dict | None = None) -> set[tuple]:
    """rules.role_words over `grp` (above) and the memberships `members`: (kind, group, user,
    attributes)."""
    values = ", ".join(f"('{provider}', '{k}', '{g}', '{u}', CAST('{json.dumps(a)}' AS jsonb))"
                       for k, g, u, a in members)
    sql = (f"WITH {GRP.replace('{p}', provider)},"
           f" mem(provider, kind, group_external_id, user_external_id, attributes) AS (VALUES {values})"
           " SELECT w.external_id, w.org, w.word, w.facility_id::text FROM ({role_words}) w")
    return {tuple(r) for r in rules.rule(sql, provider, role_map=json.dumps(role_map or {}))}


def test_auth0_gives_roles_per_membership_and_an_unmapped_one_is_unknown(rules):
    got = role_words(rules, "auth0", [("organization", "org-a", "u1", {"roles": ["Admin", "Boss", "viewer"]}),
                                      ("organization", "org-a", "u2", {}),
                                      ("group", "g-admin", "u3", {}), ("group", "g-fac", "u3", {})],
                     role_map={"viewer": "ENTRY_ONLY"})
    assert got == {("u1", "org-a", "MEMBER", None), ("u1", "org-a", "ADMIN", None),  # the same name, any case
                   ("u1", "org-a", "UNKNOWN:Boss", None), ("u1", "org-a", "ENTRY_ONLY", None),  # mapped
                   ("u2", "org-a", "MEMBER", None),  # a member with no role (no_role_in_org, rules.membership)
                   ("u3", "org-b", "ADMIN", None), ("u3", "org-b", "FACILITY", FAC)}  # groups: their meaning


def test_keycloak_gives_realm_roles_in_every_organization_and_unmapped_ones_mean_nothing(rules):
    for name in ("admin", "boss"):
        rules.exec("INSERT INTO idp_group (provider, kind, external_id, name, raw, first_seen_run_id,"
                   " last_seen_run_id) VALUES ('keycloak', 'role', :x, :x, '{}', 2, 2)", x=name)
        rules.exec("INSERT INTO idp_membership (provider, kind, group_external_id, user_external_id,"
                   " first_seen_run_id, last_seen_run_id) VALUES ('keycloak', 'role', :x, 'k1', 2, 2)", x=name)
    got = role_words(rules, "keycloak", [("organization", "org-a", "k1", {"roles": ["entry_only"]}),
                                         ("organization", "org-a", "k2", {})])
    # the membership's own roles are not Keycloak's (roles_from 'user'): the realm roles are
    assert got == {("k1", "org-a", "MEMBER", None), ("k1", "org-a", "ADMIN", None), ("k2", "org-a", "MEMBER", None)}


def test_okta_has_no_organizations_only_groups(rules):
    got = role_words(rules, "okta", [("group", "g-admin", "o1", {}), ("group", "g-odd", "o1", {}),
                                     ("group", "g-site", "o1", {})])
    assert got == {("o1", "org-b", "ADMIN", None)}  # unknown roles and site admins are no role word


def test_the_idp_manages_the_orgs_its_valid_groups_and_organizations_name(rules):
    got = rules.rule(f"WITH {GRP.replace('{p}', 'okta')} SELECT DISTINCT m.* FROM ({{managed_orgs}}) m ORDER BY 1")
    assert [r[0] for r in got] == ["org-a", "org-b"]  # not org-c, named only by an unknown role


USER_COLUMNS = """
SELECT b.k, c.cols FROM (VALUES {accounts}) b(k, app_status, email, email_verified, first_name, last_name, site_admin)
JOIN (VALUES ('active', 'ann@example.org', true, 'Ann', 'Lee', false)) u(status, email, email_verified, first_name,
                                                                        last_name, is_site_admin) ON true
{user_columns}
ORDER BY 1"""


def user_columns(rules, provider: str, accounts: str) -> dict:
    return {r.k: r.cols for r in rules.rule(USER_COLUMNS.replace("{accounts}", accounts), provider)}


def test_the_values_compared_are_those_the_idp_has(rules):
    accounts = """('same', 'active', 'ann@example.org', true, 'Ann', 'Lee', false),
                  ('none', NULL, NULL, false, NULL, NULL, false),
                  ('all', 'disabled', 'ann@new.example', false, 'Anne', 'Li', true),
                  ('admin', 'active', 'ann@example.org', true, 'Ann', 'Lee', true)"""
    assert user_columns(rules, "okta", accounts) == {
        "same": [], "none": [],  # no email, names or status at the IdP: nothing compared (not cleared)
        "all": ["status", "email", "email_verified", "first_name", "last_name", "is_site_admin"],
        "admin": ["is_site_admin"]}
    # Auth0 has no site-admin group: the flag stays the application's
    assert user_columns(rules, "auth0", accounts)["admin"] == []


def test_an_app_edit_is_a_row_updated_after_the_export_started_and_not_by_the_sync(rules):
    started = datetime(2026, 1, 1, tzinfo=UTC)
    before, after, later = started - timedelta(days=1), started + timedelta(hours=1), started + timedelta(hours=2)
    rows = {"edited": (before, after, None), "edited_before_export": (before - timedelta(days=1), before, None),
            "never_updated": (after, after, None), "the_syncs_own": (before, later, later),
            "edited_after_the_sync": (before, later, after), "no_row": (None, None, None)}
    values = ", ".join(f"('{k}', CAST(:c_{k} AS timestamptz), CAST(:u_{k} AS timestamptz),"
                       f" CAST(:a_{k} AS timestamptz))" for k in rows)
    params = {f"{p}_{k}": v for k, r in rows.items() for p, v in zip("cua", r, strict=True)}
    got = rules.rule(f"""SELECT r.k, {{app_edit:r}} FROM (VALUES {values}) r(k, created_at, updated_at, a)
                         CROSS JOIN LATERAL (SELECT r.a AS applied_updated_at) x""",
                     export_started=started, **params)
    assert dict(tuple(r) for r in got) == {"edited": True, "edited_before_export": False, "never_updated": False,
                                           "the_syncs_own": False, "edited_after_the_sync": True, "no_row": False}


def test_the_owner_of_a_users_values_is_the_first_by_priority_else_the_first_linked(rules):
    users = {name: rules.conn.exec_driver_sql(
        """INSERT INTO "user" (keycloak_user_id) VALUES (%(k)s) RETURNING id""", {"k": name}).scalar_one()
        for name in ("alone", "both", "other_only")}
    rules.exec("""INSERT INTO user_identity (provider, external_id, user_id, matched_by, created_at) VALUES
                  ('auth0', 'a-alone', :alone, 'email', now()),
                  ('okta', 'o-both', :both, 'email', now() - interval '1 day'),
                  ('auth0', 'a-both', :both, 'email', now()),
                  ('okta', 'o-other', :other_only, 'email', now())""",
               alone=users["alone"], both=users["both"], other_only=users["other_only"])

    def owners(priority: list[str]) -> dict:
        got = rules.rule("""SELECT u.keycloak_user_id, {owner} FROM "user" u WHERE u.keycloak_user_id = ANY
                            (CAST(:names AS text[])) ORDER BY 1""", "auth0", priority=priority, names=list(users))
        return dict(tuple(r) for r in got)

    assert owners([]) == {"alone": "auth0", "both": "okta", "other_only": "okta"}  # linked first
    # the provider syncing counts among the user's providers, as the one about to link it
    assert owners(["auth0", "okta"]) == {"alone": "auth0", "both": "auth0", "other_only": "auth0"}
    assert owners(["okta"]) == {"alone": "auth0", "both": "okta", "other_only": "okta"}
