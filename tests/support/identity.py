"""The identity tests' tenant, databases and probes.

- `build_tenant(provider)`: a small tenant written out by hand with every edge case of the identity
  data contract and of the SimpleReport ticket (see CAST), plus FILLER users so that a sync walks
  several batches. Neutral user ids are readable (`admin-a`, `dup-1`, ...); the fakes derive their
  own ids from them.
- `insert_legacy_rows(engine, provider, fake)`: the application's users before the identity
  revision, as `user_settings` rows (LEGACY) that revision 0004 turns into users (emails in other
  cases and with spaces, duplicates, app-only users; for Keycloak, keycloak_user_id = the Keycloak
  user id); `insert_app_org(engine)`: an org the application already has, with facilities and
  memberships.
- `Ids`: neutral id <-> the provider's external id, for users and orgs.
- `state(engine, ids)`: what the identity step left, per IdP account, id-free; `reports(engine,
  ids)`; `fingerprint(engine)` (checksums of every table the step touches).
- `export(url, provider, fake)`, `cli(url, "sync", ...)` (`orgmig` in this process), `alembic(url, ...)`
  and `alembic_process(url, ...)` (alembic in a process of its own).
- Fixtures: `identity_databases` (template databases per provider and stage, copied per test),
  `identity_fake` (a started fake over a fresh tenant).
"""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.cli import main as orgmig_main
from app.config import get_settings
from app.db import make_engine
from app.ops import migrations
from app.ops.databases import libpq
from tests.fakes import FakeAuth0, FakeKeycloak, FakeOkta
from tests.fakes.tenant import Tenant
from tests.support.db import table_md5
from tests.support.idp import PROVIDER_PREFIXES, run_export
from tests.support.migrate import ROOT, alembic_cmd, alembic_env, run_alembic

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


# --------------------------------------------------------------------------- ids


class Ids:
    """Neutral ids <-> the provider's ids, for users and organizations."""

    def __init__(self, provider: str, fake) -> None:
        self.provider = provider
        tenant = fake.tenant
        if provider == "okta":
            self.user = {k: fake.okta_user_id(k) for k in tenant.users}
        elif provider == "keycloak":
            self.user = {k: fake.user_id(k) for k in tenant.users}
        else:
            self.user = {k: fake.auth0_user_id(k) for k in tenant.users}
        self.neutral = {v: k for k, v in self.user.items()}
        if provider == "keycloak":
            self.neutral[fake.service_account_id] = "service-account"
        self.org = {"A": ORG_A, "B": ORG_B}
        if provider in ("keycloak", "auth0"):
            self.org.update({"C": fake.org_id(ORG_C), "D": fake.org_id(ORG_D)})
        self.org_name = {v: k for k, v in self.org.items()}
        self.legacy = {legacy_kc_id(provider, fake, kc): kc.replace("KC:", "legacy-") for kc, _, _ in LEGACY}


# --------------------------------------------------------------------------- what the step left


@dataclass(frozen=True)
class Account:
    """A linked IdP account as the tables hold it. `orgs`: {org letter: (role, all_facilities,
    facilities)} in the orgs the IdP manages; facilities by their FAC_* name."""

    matched_by: str
    status: str
    email: str | None
    site_admin: bool = False
    orgs: dict = field(default_factory=dict)
    legacy: str | None = None  # the legacy row's keycloak_user_id (as LEGACY names it) when the user came from one


FACILITY_NAMES = {FAC_A1: "A1", FAC_A2: "A2", FAC_B1: "B1", FAC_B2: "B2", FAC_X: "X"}


def rows(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def state(engine: Engine, ids: Ids) -> dict[str, Account]:
    """Every linked account of the provider, by neutral id, with its user's values and its
    memberships in the orgs named by the IdP (personal orgs left out)."""
    accounts: dict[str, Account] = {}
    members: dict[int, dict] = {}
    for r in rows(engine, """
            SELECT m.user_id, o.external_id, r.name AS role, m.all_facilities,
                   coalesce((SELECT array_agg(f.facility_id::text ORDER BY f.facility_id) FROM org_user_facility f
                             WHERE f.org_id = m.org_id AND f.user_id = m.user_id), '{}') AS facilities
            FROM org_user m JOIN org o ON o.id = m.org_id JOIN role r ON r.id = m.role_id
            WHERE o.external_id IS NOT NULL"""):
        members.setdefault(r.user_id, {})[ids.org_name.get(r.external_id, r.external_id)] = (
            r.role, r.all_facilities, tuple(sorted(FACILITY_NAMES.get(f, f) for f in r.facilities)))
    for r in rows(engine, """
            SELECT i.external_id, i.matched_by, u.id, u.status, u.email, u.is_site_admin, u.keycloak_user_id,
                   u.legacy_user_settings_id
            FROM user_identity i JOIN "user" u ON u.id = i.user_id
            WHERE i.provider = :p""", p=ids.provider):
        key = ids.neutral.get(r.external_id, r.external_id)
        accounts[key] = Account(r.matched_by, r.status, r.email, r.is_site_admin, members.get(r.id, {}),
                                ids.legacy.get(r.keycloak_user_id) if r.legacy_user_settings_id else None)
    return accounts


def reports(engine: Engine, ids: Ids) -> set[tuple[str, str, str]]:
    """The step's reports as (source_table, what: neutral id / group name / legacy user, reason)."""
    out = set()
    for r in rows(engine, """
            SELECT r.source_table, r.reason, x.external_id AS account, g.name AS group_name,
                   u.keycloak_user_id
            FROM orgmig_report r
            LEFT JOIN idp_user x ON r.source_table = 'idp_user' AND x.row_id = r.source_id
            LEFT JOIN idp_group g ON r.source_table = 'idp_group' AND g.row_id = r.source_id
            LEFT JOIN "user" u ON r.source_table = 'user' AND u.id = r.source_id
            WHERE r.step = :s""", s=f"identity:{ids.provider}"):
        if r.source_table == "idp_user":
            what = ids.neutral.get(r.account, r.account)
        elif r.source_table == "idp_group":
            what = r.group_name
        else:
            what = ids.legacy.get(r.keycloak_user_id, r.keycloak_user_id)
        out.add((r.source_table, what, r.reason))
    return out


# Every table the identity step writes or reads back, with its key order.
TABLES = {
    '"user"': "id", "org": "id", "org_user": "org_id, user_id", "role": "id", "settings": "id",
    "facility": "id", "org_user_facility": "org_id, user_id, facility_id", "user_identity": "provider, external_id",
    "orgmig_identity_undo": "id", "orgmig_identity_group": "provider, kind, external_id",
    "orgmig_identity_todo": "provider, row_id", "orgmig_created_row": "step, table_name, row_key",
}
REPORTS = """(SELECT step, source_table, source_id, reason, migrated, detail FROM orgmig_report)"""


def fingerprint(engine: Engine) -> dict[str, tuple]:
    """(count, md5) of every table the step touches (the reports without their ids and run ids)."""
    found = {t: table_md5(engine, t, order) for t, order in TABLES.items()}
    found["orgmig_report"] = table_md5(engine, REPORTS, "step, source_table, source_id, reason")
    return found


# --------------------------------------------------------------------------- running things


def export(url: URL, provider: str, fake, code: int = 0, **env: str):
    """`orgmig export --provider P` in this process, pointed at the fake (`env` on top of its
    settings); it must exit with `code`."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(PROVIDER_PREFIXES):
                mp.delenv(key)
        for key, value in {**fake.settings(), **env}.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            out = run_export(url, "--provider", provider)
        finally:
            get_settings.cache_clear()
    assert out.code == code, out.everything[-3000:]
    return out


# --------------------------------------------------------------------------- databases and fakes


class Databases:
    """Per provider, template databases built once per session: `exported` (legacy rows migrated
    by revision 0004, the schema at 0006, the fake's snapshot exported) and `synced` (then
    `alembic upgrade head`); tests work on copies."""

    def __init__(self, pg_server) -> None:
        self.pg = pg_server
        self.templates: dict[tuple[str, str], str] = {}
        self.base: str | None = None

    def copy(self, template: str, prefix: str = "orgmig_idt") -> URL:
        """A copy of `template`, dropped at the end of the session. WAL_LOG: these databases are
        small, and FILE_COPY's checkpoint costs seconds on a busy server."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(libpq(self.pg.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY = WAL_LOG')
        self.pg.created.append(name)
        return self.pg.server.url(name)

    def empty(self) -> URL:
        """A copy of the base: the schema at 0003, no legacy rows, no export."""
        return self.copy(self._base())

    def _base(self) -> str:
        if self.base is None:
            url = self.pg.create("orgmig_idt_base")
            migrations.upgrade(migrations.alembic_config(url), "0003")
            self.base = url.database
        return self.base

    def template(self, provider: str, stage: str) -> str:
        key = (provider, stage)
        if key not in self.templates:
            if stage == "exported":
                url = self.copy(self._base(), f"orgmig_idt_{provider}")
                engine = make_engine(url, poolclass=NullPool)
                try:
                    with start(provider) as fake:
                        insert_legacy_rows(engine, provider, fake)
                        migrations.upgrade(migrations.alembic_config(url), "0006")
                        insert_app_org(engine)
                        export(url, provider, fake)
                finally:
                    engine.dispose()
            else:
                url = self.copy(self.template(provider, "exported"), f"orgmig_idt_{provider}_synced")
                proc = alembic(url, "upgrade", "head")
                assert proc.returncode == 0, proc.stderr[-3000:]
            self.templates[key] = url.database
        return self.templates[key]

    def get(self, provider: str, stage: str = "exported") -> URL:
        """A copy of the template, for one test."""
        return self.copy(self.template(provider, stage))

    def template_url(self, provider: str, stage: str) -> URL:
        """The template itself, to read only (and no connection left open: it is copied from)."""
        return self.pg.server.url(self.template(provider, stage))

    def fingerprint(self, provider: str, stage: str) -> dict[str, tuple]:
        """The template's own fingerprint."""
        engine = make_engine(self.template_url(provider, stage), poolclass=NullPool)
        try:
            return fingerprint(engine)
        finally:
            engine.dispose()


FAKES = {"okta": FakeOkta, "keycloak": FakeKeycloak, "auth0": FakeAuth0}
FAKE_OPTIONS = {"okta": {}, "keycloak": {}, "auth0": {"social_percent": 0, "export_delay": 0.05}}


def start(provider: str, tenant: Tenant | None = None):
    """A fake of the provider over the tests' tenant (a fresh one unless given), not started yet:
    use it as a context manager."""
    return FAKES[provider](tenant or build_tenant(provider), **FAKE_OPTIONS[provider])


@pytest.fixture(scope="session")
def identity_databases(pg_server) -> Databases:
    return Databases(pg_server)


@pytest.fixture
def identity_fake():
    """`identity_fake(provider)`: a started fake over a fresh tests' tenant, stopped after the test."""
    started = []

    def make(provider: str):
        fake = start(provider)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def cli(url: URL, *args: str, **env: str) -> Outcome:
    """`orgmig ARGS --database-url URL` in this process, with ORGMIG_ROLE_MAP (and `env`) set."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"ORGMIG_ROLE_MAP": ROLE_MAP, "ORGMIG_IDP_ENV": ENV, **env}.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = orgmig_main([*args, "--database-url", url.render_as_string(hide_password=False)])
        finally:
            get_settings.cache_clear()
    return Outcome(code, out.getvalue(), err.getvalue())


def alembic(url: URL, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`alembic -c alembic.ini ARGS` in a process of its own, as a deploy pipeline runs it."""
    return run_alembic(url, *args, ORGMIG_ROLE_MAP=ROLE_MAP, ORGMIG_IDP_ENV=ENV, **env)


def alembic_process(url: URL, *args: str, **env: str) -> subprocess.Popen:
    """The same, started and left running (to be killed)."""
    return subprocess.Popen(alembic_cmd(*args), cwd=ROOT,
                            env=alembic_env(url, ORGMIG_ROLE_MAP=ROLE_MAP, ORGMIG_IDP_ENV=ENV, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

