"""The identity tests' tenant: a small one written out by hand with every edge case of the identity
data contract and of the SimpleReport ticket (CAST), plus FILLER users so that a sync walks several
batches, and `start(provider)`: a fake of that provider over it. Neutral user ids are readable
(`admin-a`, `dup-1`, ...); the fakes derive their own ids from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes import FakeAuth0, FakeKeycloak, FakeOkta
from tests.fakes.tenant import Tenant

ENV = "PROD"
ROLE_MAP = "clinic-manager=admin,front-desk=entry_only"
NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)

ORG_A = "MD-Harbor-Health-5b0e4c1e-2f4a-4d6b-9c1a-7e3f0a9d2b11"
ORG_B = "TX-Summit-Labs-8c2d1f7a-3b5e-4a9c-8d0f-1e2a3b4c5d6e"
FAC_A1 = "a1000000-0000-4000-8000-0000000000a1"
FAC_A2 = "a2000000-0000-4000-8000-0000000000a2"
FAC_B1 = "b1000000-0000-4000-8000-0000000000b1"
FAC_X = "c0000000-0000-4000-8000-0000000000cc"  # named under org A and under org B
FAC_B2 = "b2000000-0000-4000-8000-0000000000b2"  # the application's, in org B; a group names it under A
APP_ORG_B = "0b0b0b0b-0000-4000-8000-00000000000b"  # org B exists in the application before the sync
ORG_C, ORG_D = "org-c", "org-d"  # neutral ids of the two organizations (Keycloak, Auth0)


def group_name(short: str) -> str:
    """`A:USER` -> SR-PROD-TENANT:<org A>:USER, `A:FAC:A1` -> ...:FACILITY_ACCESS:<uuid>, `ADMINS`."""
    if short == "ADMINS":
        return f"SR-{ENV}-ADMINS"
    org, _, rest = short.partition(":")
    ext = {"A": ORG_A, "B": ORG_B}[org]
    if rest.startswith("FAC:"):
        fac = {"A1": FAC_A1, "A2": FAC_A2, "B1": FAC_B1, "B2": FAC_B2, "X": FAC_X, "BAD": "not-a-uuid"}[rest[4:]]
        return f"SR-{ENV}-TENANT:{ext}:FACILITY_ACCESS:{fac}"
    return f"SR-{ENV}-TENANT:{ext}:{rest}"


SR_GROUPS = ["ADMINS"] + [f"{o}:{r}" for o in "AB" for r in ("ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES",
                                                                "NO_ACCESS")] \
    + ["A:FAC:A1", "A:FAC:A2", "A:FAC:X", "B:FAC:B1", "B:FAC:X", "A:FAC:B2", "A:FAC:BAD", "A:SUPERUSER"]
# Groups no sync may apply: reported (the first two) or ignored (the rest).
MALFORMED = f"SR-{ENV}-TENANT:"
OTHER_GROUPS = [MALFORMED, f"SR-{ENV}-TENANT:{ORG_A}:USER:EXTRA", f"SR-DEV-TENANT:{ORG_A}:ADMIN",
                f"sr-{ENV.lower()}-tenant:{ORG_A.lower()}:admin", "Engineering"]


@dataclass(frozen=True)
class Person:
    key: str
    email: str | None
    groups: tuple[str, ...] = ()
    status: str = "ACTIVE"
    verified: bool = True
    # Keycloak and Auth0 organizations: {org: [roles]} (Auth0 roles per membership); Keycloak
    # realm roles per user
    orgs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    realm_roles: tuple[str, ...] = ()


P = Person
# Every edge case, by the neutral id the tests name it by. The legacy rows (app users) are in LEGACY.
CAST = [
    P("admin-a", "admin.a@example.com", ("A:ADMIN", "A:NO_ACCESS", "A:FAC:A1"), orgs={ORG_C: ("ADMIN",)}),
    P("allfac-a", "allfac.a@example.com", ("A:USER", "A:ALL_FACILITIES", "A:FAC:A2"),
      orgs={ORG_C: ("USER", "ALL_FACILITIES")}),
    P("allfac-only", "allfac.only@example.com", ("A:ALL_FACILITIES",), orgs={ORG_C: ("ALL_FACILITIES",)}),
    P("user-fac", "user.fac@example.com", ("A:USER", "A:FAC:A1", "A:FAC:A2", "A:FAC:B2"), orgs={ORG_C: ("USER",)}),
    P("entry-nofac", "entry.nofac@example.com", ("A:ENTRY_ONLY",), orgs={ORG_C: ("ENTRY_ONLY",)}),
    P("no-access", "no.access@example.com", ("A:NO_ACCESS",), orgs={ORG_C: ("NO_ACCESS",)}),
    P("no-access-new", "no.access.new@example.com", ("A:NO_ACCESS",)),
    P("multi-org", "multi.org@example.com", ("A:USER", "A:FAC:A1", "B:ADMIN", "B:FAC:B1"),
      orgs={ORG_C: ("USER",), ORG_D: ("ADMIN",)}),
    P("highest", "highest@example.com", ("A:ENTRY_ONLY", "A:USER", "A:FAC:A1"),
      orgs={ORG_D: ("ENTRY_ONLY", "USER")}),
    P("fac-two-orgs", "fac.two.orgs@example.com", ("B:USER", "B:FAC:X", "B:FAC:B1")),
    P("fac-invalid", "fac.invalid@example.com", ("A:USER", "A:FAC:BAD")),
    P("unknown-role", "unknown.role@example.com", ("A:SUPERUSER",), orgs={ORG_C: ("SUPERUSER",)}),
    P("fac-only", "fac.only@example.com", ("A:FAC:A1",), orgs={ORG_D: ()}),
    P("malformed", "malformed@example.com", (MALFORMED,) + tuple(OTHER_GROUPS[1:])),
    P("site-admin", "site.admin@example.com", ("ADMINS", "B:USER")),
    P("site-admin-only", "site.admin.only@example.com", ("ADMINS",)),
    P("suspended", "suspended@example.com", ("A:USER", "A:FAC:A1"), status="SUSPENDED", orgs={ORG_C: ("USER",)}),
    P("deprovisioned", "deprovisioned@example.com", ("B:ADMIN",), status="DEPROVISIONED",
      orgs={ORG_D: ("ADMIN",)}),
    P("suspended-new", "suspended.new@example.com", ("A:USER",), status="SUSPENDED", orgs={ORG_C: ("USER",)}),
    P("staged", "staged@example.com", ("A:USER",), status="STAGED", verified=False, orgs={ORG_C: ("USER",)}),
    P("provisioned", "provisioned@example.com", ("B:ENTRY_ONLY", "B:FAC:B1"), status="PROVISIONED",
      verified=False),
    P("locked", "locked@example.com", ("A:USER",), status="LOCKED_OUT"),
    P("recovery", "recovery@example.com", ("A:ENTRY_ONLY",), status="RECOVERY"),
    P("dup-1", "shared@example.com", ("A:USER",), orgs={ORG_C: ("USER",)}),
    P("dup-2", "Shared@Example.com", ("A:USER",), orgs={ORG_C: ("USER",)}),
    P("app-dup", "twin@example.com", ("A:USER",), orgs={ORG_C: ("USER",)}),
    P("unverified", "unverified@example.com", ("A:USER",), verified=False, orgs={ORG_C: ("USER",)}),
    P("case-space", "Case.Space@Example.COM", ("B:USER",), orgs={ORG_D: ("USER",)}),
    P("idp-space", " Idp.Space@Example.com ", ("B:ENTRY_ONLY",), orgs={ORG_D: ("ENTRY_ONLY",)}),
    P("no-email", None, ("A:USER",), verified=False, orgs={ORG_C: ("USER",)}),
    P("idp-only", "idp.only@example.com", ("B:USER", "B:FAC:B1"), orgs={ORG_D: ("USER",)}),
    P("idp-only-norole", "idp.only.norole@example.com"),
    P("kc-subject", "kc.subject@example.com", ("A:USER",), orgs={ORG_C: ("USER",)}),
    # Keycloak: kc-old is the app user's Keycloak id, kc-new holds the app user's email
    P("kc-old", "kc.old@example.com", ("A:USER",), orgs={ORG_C: ("USER",)}),
    P("kc-new", "kc.twin@example.com", ("B:USER",), orgs={ORG_D: ("USER",)}),
    # Keycloak and Auth0 organizations (roles through ORGMIG_ROLE_MAP)
    P("org-admin", "org.admin@example.com", orgs={ORG_C: ("ADMIN",)}, realm_roles=("ADMIN",)),
    P("org-mapped", "org.mapped@example.com", orgs={ORG_C: ("clinic-manager",), ORG_D: ("front-desk",)},
      realm_roles=("clinic-manager",)),
    P("org-front", "org.front@example.com", orgs={ORG_D: ("front-desk", "USER")}, realm_roles=("front-desk", "USER")),
    P("org-norole", "org.norole@example.com", orgs={ORG_D: ()}),
    P("org-allfac", "org.allfac@example.com", orgs={ORG_C: ("ENTRY_ONLY", "ALL_FACILITIES")},
      realm_roles=("ENTRY_ONLY", "ALL_FACILITIES")),
    P("org-unknown", "org.unknown@example.com", orgs={ORG_C: ("SUPERUSER",)}, realm_roles=("SUPERUSER",)),
]
CAST_BY_KEY = {p.key: p for p in CAST}

# Keycloak: realm roles hold for every organization a user is a member of; the group-convention
# people are in no organization there.
KEYCLOAK_ORG_PEOPLE = {"org-admin", "org-mapped", "org-front", "org-norole", "org-allfac", "org-unknown"}

FILLER = 160


def filler(i: int) -> Person:
    """Four kinds in turn: matched and in A with a facility, created in B with a facility,
    matched admin of A, matched user of B with an email in other case."""
    kind = i % 4
    groups = (("A:USER", "A:FAC:A1"), ("B:ENTRY_ONLY", "B:FAC:B1"), ("A:ADMIN",), ("B:USER",))[kind]
    orgs = ({ORG_C: ("USER",)}, {ORG_D: ("ENTRY_ONLY",)}, {ORG_C: ("ADMIN",)}, {ORG_D: ("USER",)})[kind]
    realm = (("USER",), ("ENTRY_ONLY",), ("ADMIN",), ("USER",))[kind]
    return P(f"filler-{i:03d}", f"filler.{i:03d}@example.org", groups, orgs=orgs, realm_roles=realm)


FILLERS = [filler(i) for i in range(FILLER)]
FILLER_MATCHED = {p.key for i, p in enumerate(FILLERS) if i % 4 != 1}


def build_tenant(provider: str) -> Tenant:
    """The tests' tenant for one provider: Okta gets the SimpleReport groups; Keycloak the groups,
    realm roles and the organizations' members; Auth0 the organizations with roles per member.
    The same for the same provider, timestamps included."""
    t = Tenant(seed=101, now=NOW, env=ENV)
    for name in ("NO_ACCESS", "ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES", "SITE_ADMIN", "clinic-manager",
                 "front-desk", "SUPERUSER"):
        t.add_role(name, f"role {name}", role_id=f"role-{name.lower()}")
    groups = {}
    if provider in ("okta", "keycloak"):
        for short in SR_GROUPS:
            groups[short] = t.add_group(group_name(short), short, kind="role", now=NOW, group_id=f"g-{short}").id
        for name in OTHER_GROUPS:
            groups[name] = t.add_group(name, "outside the convention", now=NOW, group_id=f"g-{name}").id
    if provider in ("keycloak", "auth0"):
        t.add_organization(name="clinica-sao-jose", display_name="Clínica São José", external_id="CA-Clinic-C",
                           now=NOW, org_id=ORG_C)
        t.add_organization(name="lakeview-labs", display_name="Lakeview Labs", external_id="WA-Lakeview-D",
                           now=NOW, org_id=ORG_D)
    for p in CAST + FILLERS:
        local = (p.email or p.key).split("@")[0]
        t.add_user(login=f"{p.key}@login.example", email=p.email, first_name=local.split(".")[0].title(),
                   last_name=p.key.title(), status=p.status, email_verified=p.verified, now=NOW, user_id=p.key)
        if provider in ("okta", "keycloak"):
            for g in p.groups:
                t.add_member(groups[g], p.key, now=NOW)
        if provider == "auth0" or (provider == "keycloak" and p.key in KEYCLOAK_ORG_PEOPLE):
            for org, roles in p.orgs.items():
                t.set_org_member(org, p.key, roles if provider == "auth0" else ())
            if provider == "keycloak":
                t.set_roles(p.key, p.realm_roles)
    return t



FAKES = {"okta": FakeOkta, "keycloak": FakeKeycloak, "auth0": FakeAuth0}
FAKE_OPTIONS = {"okta": {}, "keycloak": {}, "auth0": {"social_percent": 0, "export_delay": 0.05}}


def start(provider: str, tenant: Tenant | None = None):
    """A fake of the provider over the tests' tenant (a fresh one unless given), not started yet:
    use it as a context manager."""
    return FAKES[provider](tenant or build_tenant(provider), **FAKE_OPTIONS[provider])
