"""The application before the identity revision: `insert_legacy_rows(engine, provider, fake)` writes
LEGACY as `user_settings` rows that revision 0004 turns into users (emails in other cases and with
spaces, duplicates, app-only users; for Keycloak, keycloak_user_id = the Keycloak user id);
`insert_app_org(engine)`: an org the application already has, with facilities and memberships."""

from __future__ import annotations

from sqlalchemy import Engine, text

from tests.support.identity.cast import APP_ORG_B, FAC_B1, FAC_B2, FILLER_MATCHED, FILLERS, ORG_B

# The application's users before the identity revision: (keycloak_user_id, email, email_verified).
# `KC:<key>` stands for the Keycloak user id of that person (legacy-<key> for other providers).
LEGACY = [
    ("KC:admin-a", "admin.a@example.com", True),
    ("legacy-allfac-a", "ALLFAC.A@example.com", True),
    ("legacy-allfac-only", "allfac.only@example.com", False),
    ("legacy-user-fac", "  User.Fac@EXAMPLE.com ", True),
    ("legacy-no-access", "no.access@example.com", True),
    ("legacy-multi-org", "multi.org@example.com", True),
    ("legacy-highest", "highest@example.com", True),
    ("legacy-fac-two-orgs", "fac.two.orgs@example.com", True),
    ("legacy-fac-invalid", "fac.invalid@example.com", True),
    ("legacy-unknown-role", "unknown.role@example.com", True),
    ("legacy-fac-only", "fac.only@example.com", True),
    ("legacy-malformed", "malformed@example.com", True),
    ("legacy-site-admin", "site.admin@example.com", True),
    ("legacy-site-admin-only", "site.admin.only@example.com", True),
    ("legacy-suspended", "suspended@example.com", True),
    ("legacy-deprovisioned", "deprovisioned@example.com", True),
    ("legacy-locked", "locked@example.com", True),
    ("legacy-recovery", "recovery@example.com", True),
    ("legacy-shared", "shared@example.com", True),
    ("legacy-twin-1", "twin@example.com", True),
    ("legacy-twin-2", " Twin@Example.com", True),
    ("legacy-unverified", "unverified@example.com", True),
    ("legacy-case-space", "  case.space@EXAMPLE.com  ", True),
    ("legacy-idp-space", "idp.space@example.com", True),
    ("legacy-app-only", "app.only@example.com", True),
    ("KC:kc-subject", "old.address@example.com", True),
    ("legacy-kc-email", "kc.subject@example.com", True),
    ("KC:kc-old", "kc.twin@example.com", True),
    ("legacy-org-admin", "org.admin@example.com", True),
    ("legacy-org-mapped", "ORG.MAPPED@example.com", True),
    ("legacy-org-front", "org.front@example.com", True),
    ("legacy-org-norole", "org.norole@example.com", True),
    ("legacy-org-allfac", "org.allfac@example.com", True),
    ("legacy-org-unknown", "org.unknown@example.com", True),
] + [(f"KC:{p.key}" if i % 8 == 0 else f"legacy-{p.key}", p.email.upper() if i % 4 == 3 else p.email, True)
     for i, p in enumerate(FILLERS) if p.key in FILLER_MATCHED]


# The application's own org B, before the sync: (legacy user, role, all_facilities, facilities).
APP_ORG_B_MEMBERS = [
    ("legacy-site-admin", "admin", False, []),  # the IdP says USER
    ("legacy-fac-two-orgs", "user", False, [FAC_B1, FAC_B2]),  # the IdP grants B1 only
    ("legacy-deprovisioned", "user", True, []),  # the IdP says ADMIN
    ("legacy-no-access", "user", False, [FAC_B2]),  # the IdP gives no role in B
    ("legacy-app-only", "user", False, [FAC_B1]),  # no account: never touched
]


def insert_app_org(engine: Engine) -> None:
    """Org B as the application had it before the identity revision: its external id is the one
    SimpleReport's groups name, two facilities, and memberships the sync will change. And an org
    of the application's named as one of the IdP's organizations."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO org (name) VALUES ('Lakeview Labs')"))
        conn.execute(text("INSERT INTO org (id, name, external_id) VALUES (:id, 'Summit Labs', :ext)"),
                     {"id": APP_ORG_B, "ext": ORG_B})
        conn.execute(text("INSERT INTO facility (id, org_id, name) VALUES (:b1, :o, 'Main St'), (:b2, :o, 'Annex')"),
                     {"b1": FAC_B1, "b2": FAC_B2, "o": APP_ORG_B})
        for label, role, all_facilities, facs in APP_ORG_B_MEMBERS:
            params = {"o": APP_ORG_B, "k": label, "r": role, "a": all_facilities}
            conn.execute(text("""INSERT INTO org_user (org_id, user_id, role_id, all_facilities)
                                 SELECT :o, u.id, r.id, :a FROM "user" u, role r
                                 WHERE u.keycloak_user_id = :k AND r.name = :r"""), params)
            for fac in facs:
                conn.execute(text("""INSERT INTO org_user_facility (org_id, user_id, facility_id)
                                     SELECT :o, id, :f FROM "user" WHERE keycloak_user_id = :k"""),
                             {"o": APP_ORG_B, "k": label, "f": fac})


def legacy_kc_id(provider: str, fake, marker: str) -> str:
    if marker.startswith("KC:"):
        key = marker[3:]
        return fake.user_id(key) if provider == "keycloak" else f"legacy-{key}"
    return marker


def insert_legacy_rows(engine: Engine, provider: str, fake) -> None:
    rows = [{"kc": legacy_kc_id(provider, fake, kc), "email": email, "verified": verified}
            for kc, email, verified in LEGACY]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO user_settings (keycloak_user_id, email, email_verified, language)"
                          " VALUES (:kc, :email, :verified, 'en')"), rows)
