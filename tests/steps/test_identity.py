"""Revision 0007 (the identity step) per provider, against a real PostgreSQL and the fake providers
over loopback: every edge case of the identity data contract and of the SimpleReport ticket
(tests/support/identity/cast.py CAST), the rows asserted one by one; then a second sync changes
nothing, and `alembic downgrade 0006` puts every table back exactly."""

from __future__ import annotations

from collections import Counter

import pytest

from app.ops import verify
from tests.support.identity import (
    CAST_BY_KEY,
    FAC_A1,
    FAC_A2,
    FAC_B1,
    FAC_B2,
    FILLERS,
    ORG_A,
    Account,
    Ids,
    alembic,
    cli,
    downgrade_restores,
    fingerprint,
    reports,
    rows,
    start,
    state,
)
from tests.support.identity import group_name as g
from tests.support.migrate import failed_checks

PROVIDERS = ["okta", "keycloak", "auth0"]
KC_FILLER_SUBJECT = {p.key for i, p in enumerate(FILLERS) if i % 8 == 0}


def account(provider: str, key: str, matched_by: str, orgs: dict | None = None, *, status: str = "active",
            site_admin: bool = False, legacy: str | None = "", email: str | None = "") -> tuple[str, Account]:
    """The expected row of one account: its IdP email (Keycloak lower-cases emails) unless
    given, and the legacy user it came from (legacy-<key> unless created or given)."""
    if email == "":
        email = CAST_BY_KEY[key].email if key in CAST_BY_KEY else next(p.email for p in FILLERS if p.key == key)
        email = email.strip().lower() if email and provider == "keycloak" else email and email.strip()
    if legacy == "":
        legacy = None if matched_by == "created" else f"legacy-{key}"
    return key, Account(matched_by, status, email, site_admin, orgs or {}, legacy)


def expected_fillers(provider: str) -> dict[str, Account]:
    out = {}
    for i, p in enumerate(FILLERS):
        kind = i % 4
        by = "created" if kind == 1 else "subject" if provider == "keycloak" and p.key in KC_FILLER_SUBJECT else "email"
        if provider == "auth0":
            orgs = ({"C": ("user", False, ())}, {"D": ("entry_only", False, ())}, {"C": ("admin", True, ())},
                    {"D": ("user", False, ())})[kind]
        else:
            orgs = ({"A": ("user", False, ("A1",))}, {"B": ("entry_only", False, ("B1",))}, {"A": ("admin", True, ())},
                    {"B": ("user", False, ())})[kind]
        out.update([account(provider, p.key, by, orgs)])
    return out


def expected_groups(provider: str) -> dict[str, Account]:
    """Okta and Keycloak: SimpleReport's groups."""
    kc = provider == "keycloak"
    a = lambda *args, **kw: account(provider, *args, **kw)  # noqa: E731
    return dict([
        a("admin-a", "subject" if kc else "email", {"A": ("admin", True, ())}),  # ADMIN: all facilities, no rows
        a("allfac-a", "email", {"A": ("user", True, ())}),  # ALL_FACILITIES without ADMIN
        a("allfac-only", "email"),  # ALL_FACILITIES is no role: reported no_role_in_org
        a("user-fac", "email", {"A": ("user", False, ("A1", "A2"))}),  # app email in other case and spaces
        a("entry-nofac", "created", {"A": ("entry_only", False, ())}),  # no facilities: still migrated
        a("no-access", "email"),  # NO_ACCESS only: linked, nothing reported; its membership of B taken away
        a("multi-org", "email", {"A": ("user", False, ("A1",)), "B": ("admin", True, ())}),
        a("highest", "email", {"A": ("user", False, ("A1",))}),  # USER over ENTRY_ONLY
        a("fac-two-orgs", "email", {"B": ("user", False, ("B1",))}),  # X is named under A and B; B2 taken away
        a("fac-invalid", "email", {"A": ("user", False, ())}),  # FACILITY_ACCESS:not-a-uuid
        a("unknown-role", "email"),
        a("fac-only", "email"),  # a facility without a role: no_role_in_org
        a("malformed", "email"),
        a("site-admin", "email", {"B": ("user", False, ())}, site_admin=True),  # was admin of B in the app
        a("site-admin-only", "email", site_admin=True),
        a("suspended", "email", {"A": ("user", False, ("A1",))}, status="disabled"),  # memberships kept
        a("deprovisioned", "email", {"B": ("admin", True, ())}, status="disabled"),  # was user of B
        a("staged", "created", {"A": ("user", False, ())}, status="active" if kc else "pending"),
        a("provisioned", "created", {"B": ("entry_only", False, ("B1",))}, status="active" if kc else "invited"),
        a("locked", "email", {"A": ("user", False, ())}),
        a("recovery", "email", {"A": ("entry_only", False, ())}),
        a("case-space", "email", {"B": ("user", False, ())}),  # the IdP's address replaces "  case.space@EXAMPLE.com  "
        a("idp-space", "email", {"B": ("entry_only", False, ())}),  # " Idp.Space@Example.com " at the IdP, trimmed
        a("no-email", "created", {"A": ("user", False, ())}, email=None),
        a("idp-only", "created", {"B": ("user", False, ("B1",))}),
        # Keycloak: the legacy user whose keycloak_user_id is the account's id, over the one holding its email
        a("kc-subject", "subject", {"A": ("user", False, ())}) if kc else
        a("kc-subject", "email", {"A": ("user", False, ())}, legacy="legacy-kc-email"),
        # The Keycloak id wins; the account holding that user's email (about to be kc-old's) is
        # another person with no app user yet.
        a("kc-old", "subject" if kc else "created", {"A": ("user", False, ())}),
        a("kc-new", "created", {"B": ("user", False, ())}) if kc else
        a("kc-new", "email", {"B": ("user", False, ())}, legacy="legacy-kc-old"),
        # Keycloak organizations, realm roles mapped through ORGMIG_ROLE_MAP; Okta has none
        a("org-admin", "email", {"C": ("admin", True, ())} if kc else {}),
        a("org-mapped", "email", {"C": ("admin", True, ()), "D": ("admin", True, ())} if kc else {}),
        a("org-front", "email", {"D": ("user", False, ())} if kc else {}),  # front-desk (entry_only) and USER
        a("org-norole", "email"),
        a("org-allfac", "email", {"C": ("entry_only", True, ())} if kc else {}),
        a("org-unknown", "email"),  # a realm role that maps to nothing means nothing
    ])


def expected_auth0() -> dict[str, Account]:
    """Auth0: organizations with roles per member (ORGMIG_ROLE_MAP), blocked users disabled."""
    a = lambda *args, **kw: account("auth0", *args, **kw)  # noqa: E731
    return dict([
        a("admin-a", "email", {"C": ("admin", True, ())}),
        a("allfac-a", "email", {"C": ("user", True, ())}),
        a("allfac-only", "email"),
        a("user-fac", "email", {"C": ("user", False, ())}),
        a("entry-nofac", "created", {"C": ("entry_only", False, ())}),
        # NO_ACCESS only (in organization C): nothing stored, nothing reported; org B is not Auth0's
        a("no-access", "email", {"B": ("user", False, ("B2",))}),
        a("multi-org", "email", {"C": ("user", False, ()), "D": ("admin", True, ())}),
        a("highest", "email", {"D": ("user", False, ())}),
        a("fac-two-orgs", "email", {"B": ("user", False, ("B1", "B2"))}),
        a("fac-invalid", "email"),
        a("unknown-role", "email"),
        a("fac-only", "email"),
        a("malformed", "email"),
        a("site-admin", "email", {"B": ("admin", False, ())}),  # no SimpleReport groups at Auth0
        a("site-admin-only", "email"),
        a("suspended", "email", {"C": ("user", False, ())}, status="disabled"),  # blocked
        a("deprovisioned", "email", {"B": ("user", True, ()), "D": ("admin", True, ())}, status="disabled"),
        a("staged", "created", {"C": ("user", False, ())}),
        a("locked", "email"),
        a("recovery", "email"),
        a("case-space", "email", {"D": ("user", False, ())}),
        a("idp-space", "email", {"D": ("entry_only", False, ())}),
        a("no-email", "created", {"C": ("user", False, ())}, email=None),
        a("idp-only", "created", {"D": ("user", False, ())}),
        a("kc-subject", "email", {"C": ("user", False, ())}, legacy="legacy-kc-email"),
        a("kc-old", "created", {"C": ("user", False, ())}),
        a("kc-new", "email", {"D": ("user", False, ())}, legacy="legacy-kc-old"),
        a("org-admin", "email", {"C": ("admin", True, ())}),
        # clinic-manager and front-desk through ORGMIG_ROLE_MAP
        a("org-mapped", "email", {"C": ("admin", True, ()), "D": ("entry_only", False, ())}),
        a("org-front", "email", {"D": ("user", False, ())}),
        a("org-norole", "email"),
        a("org-allfac", "email", {"C": ("entry_only", True, ())}),
        a("org-unknown", "email"),
    ])


def expected_state(provider: str) -> dict[str, Account]:
    found = expected_auth0() if provider == "auth0" else expected_groups(provider)
    return {**found, **expected_fillers(provider)}


# Reports every provider makes: accounts that match no app user or more than one, app users with
# no account.
COMMON_REPORTS = {
    ("idp_user", "dup-1", "email_ambiguous"),  # two accounts hold shared@example.com
    ("idp_user", "dup-2", "email_ambiguous"),
    ("idp_user", "app-dup", "email_ambiguous"),  # two app users hold twin@example.com
    ("idp_user", "unverified", "email_unverified"),
    ("idp_user", "idp-only-norole", "idp_user_without_app_user"),
    ("idp_user", "no-access-new", "idp_user_without_app_user"),
    ("idp_user", "suspended-new", "idp_user_without_app_user"),  # disabled: no user created for it
    ("idp_user", "allfac-only", "no_role_in_org"),
    ("idp_user", "fac-only", "no_role_in_org"),
    ("user", "legacy-app-only", "app_user_without_idp_account"),
    ("user", "legacy-shared", "app_user_without_idp_account"),
    ("user", "legacy-twin-1", "app_user_without_idp_account"),
    ("user", "legacy-twin-2", "app_user_without_idp_account"),
    ("user", "legacy-unverified", "app_user_without_idp_account"),
}
GROUP_REPORTS = {
    ("idp_group", f"SR-PROD-TENANT:{ORG_A}:SUPERUSER", "unknown_role"),
    ("idp_group", f"SR-PROD-TENANT:{ORG_A}:FACILITY_ACCESS:not-a-uuid", "invalid_facility_id"),
    ("idp_group", g("A:FAC:X"), "facility_in_two_orgs"),
    ("idp_group", g("B:FAC:X"), "facility_in_two_orgs"),
    ("idp_group", g("A:FAC:B2"), "facility_in_two_orgs"),  # B2 is the application's facility of org B
    ("idp_group", "SR-PROD-TENANT:", "malformed_group_name"),
    ("idp_group", f"SR-PROD-TENANT:{ORG_A}:USER:EXTRA", "malformed_group_name"),
}
EXPECTED_REPORTS = {
    "okta": COMMON_REPORTS | GROUP_REPORTS | {("user", "legacy-kc-subject", "app_user_without_idp_account")},
    "keycloak": COMMON_REPORTS | GROUP_REPORTS | {
        ("user", "legacy-kc-email", "app_user_without_idp_account"),
        ("idp_user", "org-norole", "no_role_in_org"),
        ("idp_user", "org-unknown", "no_role_in_org"),
        ("idp_user", "service-account", "idp_user_without_app_user"),  # the export client's own user
    },
    "auth0": COMMON_REPORTS | {
        ("user", "legacy-kc-subject", "app_user_without_idp_account"),
        ("idp_user", "org-norole", "no_role_in_org"),
        ("idp_user", "unknown-role", "unknown_role"),  # SUPERUSER, per member at Auth0
        ("idp_user", "org-unknown", "unknown_role"),
        ("idp_user", "provisioned", "idp_user_without_app_user"),  # in no organization
    },
}


def managed_orgs(engine, ids: Ids) -> dict[str, str]:
    return {ids.org_name.get(r.external_id, r.external_id): r.name
            for r in rows(engine, "SELECT external_id, name FROM org WHERE external_id IS NOT NULL")}


def facilities(engine, ids: Ids) -> dict[str, str]:
    return {str(r.id): ids.org_name[r.external_id]
            for r in rows(engine, "SELECT f.id, o.external_id FROM facility f JOIN org o ON o.id = f.org_id")}


PERSONAL = """SELECT md5(string_agg(concat_ws('|', o.id, o.name, o.updated_at, m.user_id, m.role_id, m.status,
                                              m.all_facilities, m.updated_at), ',' ORDER BY o.name))
              FROM org o JOIN org_user m ON m.org_id = o.id WHERE o.external_id IS NULL"""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upgrade_applies_the_snapshot_rerun_changes_nothing_downgrade_restores(identity_databases, provider):
    url, engine = identity_databases.open(provider, "exported")
    ids = Ids(provider, start(provider))
    before = fingerprint(engine)
    personal = rows(engine, PERSONAL)
    dry = cli(url, "sync", "--provider", provider, "--dry-run")
    assert dry.code == 0, dry.stderr[-3000:]
    assert fingerprint(engine) == before
    if provider == "okta":
        # Another environment's groups: only SR-DEV-TENANT:<A>:ADMIN (the user `malformed`) means anything.
        dev = cli(url, "sync", "--provider", provider, "--dry-run", ORGMIG_IDP_ENV="DEV")
        assert dev.code == 0, dev.stderr[-3000:]
        assert "0 users to create; memberships 1 to add, 0 to change, 0 to remove; facility access 0 to grant," \
               " 0 to remove;" in dev.stdout
        assert fingerprint(engine) == before

    proc = alembic(url, "upgrade", "head")
    assert proc.returncode == 0, proc.stderr[-3000:]

    expected = expected_state(provider)
    assert state(engine, ids) == expected
    assert reports(engine, ids) == EXPECTED_REPORTS[provider]
    # The dry run said so beforehand: links, users created, and reports by reason.
    by = Counter(a.matched_by for a in expected.values())
    plan = dry.stdout.splitlines()
    assert f"{len(ids.neutral)} accounts: {by['email'] + by['subject']} links to create," \
           f" {by['created']} users to create;" in plan[1]
    assert plan[2] == "  reported: " + ", ".join(
        f"{n} {reason}" for reason, n in sorted(Counter(r[2] for r in EXPECTED_REPORTS[provider]).items()))
    # Orgs the IdP names are matched by external id (B is the application's), else created and
    # named by the IdP where it has a name, else by their external id.
    if provider == "auth0":
        assert managed_orgs(engine, ids) == {"B": "Summit Labs", "C": "Clínica São José",
                                             "D": f"Lakeview Labs ({ids.org['D']})"}  # the name was taken
        assert facilities(engine, ids) == {FAC_B1: "B", FAC_B2: "B"}
    else:
        orgs = {"A": ORG_A, "B": "Summit Labs"}
        if provider == "keycloak":
            orgs |= {"C": "Clínica São José", "D": f"Lakeview Labs ({ids.org['D']})"}
        assert managed_orgs(engine, ids) == orgs
        assert facilities(engine, ids) == {FAC_A1: "A", FAC_A2: "A", FAC_B1: "B", FAC_B2: "B"}  # not X: two orgs
    # The app-only user's membership of B (no account, so nothing to compare) is as it was.
    assert rows(engine, """SELECT r.name, m.all_facilities, array_agg(f.facility_id::text)
                           FROM org_user m JOIN role r ON r.id = m.role_id JOIN "user" u ON u.id = m.user_id
                           JOIN org_user_facility f ON f.org_id = m.org_id AND f.user_id = m.user_id
                           WHERE u.keycloak_user_id = 'legacy-app-only' GROUP BY 1, 2""") == [("user", False, [FAC_B1])]
    assert rows(engine, "SELECT name, rank FROM role ORDER BY rank") == [("admin", 1), ("user", 1000),
                                                                         ("entry_only", 2000)]
    # Users created for accounts: the IdP's subject as keycloak_user_id, its names, no legacy row.
    subject = {"okta": "okta|{}", "keycloak": "{}", "auth0": "{}"}[provider]
    created = {r.keycloak_user_id: (r.first_name, r.last_name, r.email_verified)
               for r in rows(engine, """SELECT u.* FROM "user" u JOIN user_identity i ON i.user_id = u.id
                                        WHERE i.matched_by = 'created'""")}
    assert created[subject.format(ids.user["idp-only"])] == ("Idp", "Idp-Only", True)
    assert created[subject.format(ids.user["no-email"])][:2] == ("No-Email", "No-Email")
    # Linked users take the IdP's names too.
    assert rows(engine, """SELECT first_name, last_name FROM "user" WHERE keycloak_user_id = :k""",
                k=next(k for k, v in ids.legacy.items() if v == "legacy-user-fac")) == [("User", "User-Fac")]
    # What the reports say beyond their reason.
    detail = {(r.key, r.reason): (r.migrated, r.detail) for r in rows(engine, """
        SELECT coalesce(x.external_id, g.name) AS key, r.reason, r.migrated, r.detail FROM orgmig_report r
        LEFT JOIN idp_user x ON r.source_table = 'idp_user' AND x.row_id = r.source_id
        LEFT JOIN idp_group g ON r.source_table = 'idp_group' AND g.row_id = r.source_id
        WHERE r.step = :s AND r.source_table <> 'user'""", s=f"identity:{provider}")}
    assert detail[(ids.user["dup-1"], "email_ambiguous")] == (False, {
        "external_id": ids.user["dup-1"], "app_users": 1, "accounts": 2, "linked_elsewhere": False})
    assert detail[(ids.user["app-dup"], "email_ambiguous")][1]["app_users"] == 2
    assert detail[(ids.user["fac-only"], "no_role_in_org")][0] is True  # linked all the same
    if provider == "auth0":
        assert detail[(ids.user["org-unknown"], "unknown_role")] == (True, {
            "external_id": ids.user["org-unknown"], "orgs": [{"org": ids.org["C"], "roles": ["SUPERUSER"]}]})
    else:
        assert detail[(g("A:FAC:X"), "facility_in_two_orgs")] == (False, {"group": g("A:FAC:X"), "org": ORG_A})
    # Personal orgs and the memberships revision 0004 made are never touched.
    assert rows(engine, PERSONAL) == personal
    assert failed_checks(engine) == []
    assert {c.revision for c in verify.run(engine)} >= {"0004", "0006", "0007"}

    # reconcile (compare.sql, one statement) agrees with what the batches wrote (state.sql) on
    # every edge case of the tenant: no drift.
    clean = cli(url, "reconcile", "--provider", provider, "--json")
    assert clean.code == 0, clean.stdout[-3000:] + clean.stderr[-3000:]

    # Running the sync again writes nothing: identical tables.
    after = fingerprint(engine)
    again = cli(url, "sync", "--provider", provider)
    assert again.code == 0, again.stderr[-3000:]
    assert "links created: 0; users created: 0; users changed: 0; memberships written: 0" in again.stderr
    assert fingerprint(engine) == after
    assert failed_checks(engine) == []

    downgrade_restores(url, engine, before)
    engine.dispose()
