"""Provider-neutral synthetic identity data, generated deterministically from a seed.

A `Tenant` holds users, groups, group memberships, roles and organizations in neutral terms
(user status uses Okta's vocabulary). Each fake server maps it into its provider's ids and JSON
shapes. `make_tenant(users, groups, seed)` always builds the same tenant for the same arguments,
including the awkward cases a migration must survive: unicode names, users with no email, users
in no group or in many groups, duplicate emails that differ only in case, DEPROVISIONED and
SUSPENDED users, SimpleReport-style group names (well-formed and malformed), users whose facility
group belongs to another organization.

Tests change the data through the `Tenant` methods (`touch_user`, `set_status`, `add_user`,
`add_member`, ...): they bump `last_updated`/`last_membership_updated` and the version counters
the fakes use to refresh their caches.
"""

from __future__ import annotations

import gc
import random
import threading
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

UTC = UTC

STATUSES = (
    "ACTIVE",
    "STAGED",
    "PROVISIONED",
    "SUSPENDED",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "RECOVERY",
)

# SimpleReport organization roles, in the order their Okta groups are created.
ORG_ROLE_NAMES = ("NO_ACCESS", "ADMIN", "USER", "ENTRY_ONLY", "ALL_FACILITIES")
SITE_ADMIN_ROLE = "SITE_ADMIN"

REFERENCE_NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def _ms(dt: datetime) -> datetime:
    """UTC, truncated to millisecond precision (what every provider stores); naive means UTC."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=(dt.microsecond // 1000) * 1000)


def utcnow() -> datetime:
    return _ms(datetime.now(UTC))


@dataclass(slots=True, eq=False)
class User:
    id: str
    login: str
    email: str | None
    email_verified: bool
    first_name: str
    last_name: str
    status: str
    created: datetime
    last_updated: datetime
    last_login: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def username(self) -> str:
        return self.login

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(slots=True, eq=False)
class Group:
    id: str
    name: str
    description: str
    created: datetime
    last_updated: datetime
    last_membership_updated: datetime
    parent_id: str | None = None
    # role | facility | site_admin | malformed | plain
    kind: str = "plain"
    org_id: str | None = None
    role_name: str | None = None
    facility_id: str | None = None
    version: int = 0


@dataclass(slots=True, eq=False)
class Role:
    id: str
    name: str
    description: str


@dataclass(slots=True, eq=False)
class OrgMember:
    user_id: str
    role_ids: list[str]


@dataclass(slots=True, eq=False)
class Organization:
    id: str
    name: str
    display_name: str
    external_id: str
    created: datetime
    members: list[OrgMember] = field(default_factory=list)
    facility_ids: list[str] = field(default_factory=list)
    version: int = 0


class Tenant:
    """Neutral identity data. Mutate it only through the methods below."""

    def __init__(self, *, seed: int = 0, now: datetime | None = None, env: str = "PROD") -> None:
        self.seed = seed
        self.now = now or REFERENCE_NOW
        self.env = env
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.memberships: dict[str, list[str]] = {}
        self.roles: dict[str, Role] = {}
        self.user_roles: dict[str, list[str]] = {}
        self.organizations: dict[str, Organization] = {}
        self.custom_attributes: dict[str, str] = {}  # name -> JSON schema type
        self.lock = threading.RLock()
        # `version` changes on every mutation; `structure_version` when users, groups or
        # memberships are added or removed (the fakes rebuild their indexes then).
        self.version = 0
        self.structure_version = 0
        self._groups_of: dict[str, list[str]] | None = None
        self._groups_of_version = -1

    # ----------------------------------------------------------------- queries
    def user(self, user_id: str) -> User:
        return self.users[user_id]

    def group(self, group_id: str) -> Group:
        return self.groups[group_id]

    def group_by_name(self, name: str) -> Group:
        for g in self.groups.values():
            if g.name == name:
                return g
        raise KeyError(name)

    def role_by_name(self, name: str) -> Role:
        for r in self.roles.values():
            if r.name == name:
                return r
        raise KeyError(name)

    def members(self, group_id: str) -> list[str]:
        return list(self.memberships.get(group_id, ()))

    def groups_of(self, user_id: str) -> list[str]:
        """Group ids the user belongs to, in group creation order."""
        with self.lock:
            if self._groups_of is None or self._groups_of_version != self.structure_version:
                index: dict[str, list[str]] = {}
                for gid in self.groups:
                    for uid in self.memberships.get(gid, ()):
                        index.setdefault(uid, []).append(gid)
                self._groups_of = index
                self._groups_of_version = self.structure_version
            return list(self._groups_of.get(user_id, ()))

    def roles_of(self, user_id: str) -> list[str]:
        return list(self.user_roles.get(user_id, ()))

    def orgs_of(self, user_id: str) -> list[str]:
        return [o.id for o in self.organizations.values() if any(m.user_id == user_id for m in o.members)]

    def children_of(self, group_id: str | None) -> list[str]:
        return [g.id for g in self.groups.values() if g.parent_id == group_id]

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for u in self.users.values():
            by_status[u.status] = by_status.get(u.status, 0) + 1
        grouped = {uid for ms in self.memberships.values() for uid in ms}
        return {
            "users": len(self.users),
            "groups": len(self.groups),
            "roles": len(self.roles),
            "organizations": len(self.organizations),
            "by_status": by_status,
            "users_without_email": sum(1 for u in self.users.values() if not u.email),
            "users_in_no_group": len(self.users) - len(grouped & self.users.keys()),
            "memberships": sum(len(v) for v in self.memberships.values()),
        }

    # --------------------------------------------------------------- mutations
    def _bump(self, structure: bool = False) -> None:
        self.version += 1
        if structure:
            self.structure_version += 1

    def touch_user(self, user_id: str, now: datetime | None = None, **changes: Any) -> User:
        """Set `last_updated` to `now` (default: the current time), applying any field changes
        (e.g. `email=...`, `first_name=...`, `custom={...}`) at the same time."""
        with self.lock:
            u = self.users[user_id]
            for key, value in changes.items():
                if not hasattr(u, key) or key in ("id", "version"):
                    raise AttributeError(f"User has no settable field {key!r}")
                setattr(u, key, value)
            u.last_updated = _ms(now or utcnow())
            u.version += 1
            self._bump()
            return u

    def set_status(self, user_id: str, status: str, now: datetime | None = None) -> User:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return self.touch_user(user_id, now, status=status)

    def add_user(
        self,
        *,
        login: str,
        email: str | None,
        first_name: str,
        last_name: str,
        status: str = "ACTIVE",
        email_verified: bool = True,
        custom: dict[str, Any] | None = None,
        now: datetime | None = None,
        user_id: str | None = None,
    ) -> User:
        with self.lock:
            ts = _ms(now or utcnow())
            uid = user_id or str(uuid.uuid4())
            u = User(uid, login, email, email_verified, first_name, last_name, status, ts, ts, None, dict(custom or {}))
            self.users[uid] = u
            self._bump(structure=True)
            return u

    def delete_user(self, user_id: str, now: datetime | None = None) -> None:
        """Remove the user entirely (as a hard delete in the provider would)."""
        with self.lock:
            ts = _ms(now or utcnow())
            del self.users[user_id]
            for gid, ms in self.memberships.items():
                if user_id in ms:
                    ms.remove(user_id)
                    self.groups[gid].last_membership_updated = ts
                    self.groups[gid].version += 1
            self.user_roles.pop(user_id, None)
            for org in self.organizations.values():
                before = len(org.members)
                org.members = [m for m in org.members if m.user_id != user_id]
                if len(org.members) != before:
                    org.version += 1
            self._bump(structure=True)

    def add_member(self, group_id: str, user_id: str, now: datetime | None = None) -> None:
        with self.lock:
            ms = self.memberships.setdefault(group_id, [])
            if user_id not in ms:
                ms.append(user_id)
                g = self.groups[group_id]
                g.last_membership_updated = _ms(now or utcnow())
                g.version += 1
                self._bump(structure=True)

    def remove_member(self, group_id: str, user_id: str, now: datetime | None = None) -> None:
        with self.lock:
            ms = self.memberships.get(group_id, [])
            if user_id in ms:
                ms.remove(user_id)
                g = self.groups[group_id]
                g.last_membership_updated = _ms(now or utcnow())
                g.version += 1
                self._bump(structure=True)

    def touch_group(self, group_id: str, now: datetime | None = None, **changes: Any) -> Group:
        with self.lock:
            g = self.groups[group_id]
            for key, value in changes.items():
                if not hasattr(g, key) or key in ("id", "version"):
                    raise AttributeError(f"Group has no settable field {key!r}")
                setattr(g, key, value)
            g.last_updated = _ms(now or utcnow())
            g.version += 1
            self._bump(structure=True)
            return g

    def add_group(
        self,
        name: str,
        description: str = "",
        *,
        kind: str = "plain",
        org_id: str | None = None,
        role_name: str | None = None,
        facility_id: str | None = None,
        parent_id: str | None = None,
        now: datetime | None = None,
        group_id: str | None = None,
    ) -> Group:
        """A new group (no members); `kind` etc. as the generator sets them, for the tests' own
        bookkeeping (the fakes render the name, description and parent)."""
        with self.lock:
            ts = _ms(now or utcnow())
            gid = group_id or str(uuid.uuid4())
            g = Group(gid, name, description, ts, ts, ts, parent_id=parent_id, kind=kind, org_id=org_id,
                      role_name=role_name, facility_id=facility_id)
            self.groups[gid] = g
            self.memberships[gid] = []
            self._bump(structure=True)
            return g

    def add_role(self, name: str, description: str = "", role_id: str | None = None) -> Role:
        """A new tenant-wide role (a Keycloak realm role, an Auth0 role)."""
        with self.lock:
            r = Role(role_id or str(uuid.uuid4()), name, description)
            self.roles[r.id] = r
            self._bump(structure=True)
            return r

    def set_roles(self, user_id: str, role_names: list[str] | tuple[str, ...]) -> None:
        """The user's tenant-wide roles (Keycloak realm roles, Auth0 user roles), by name."""
        with self.lock:
            rids = [self.role_by_name(n).id for n in role_names]
            if rids:
                self.user_roles[user_id] = rids
            else:
                self.user_roles.pop(user_id, None)
            self._bump(structure=True)

    def add_organization(
        self,
        *,
        name: str,
        display_name: str,
        external_id: str,
        now: datetime | None = None,
        org_id: str | None = None,
    ) -> Organization:
        """A new organization (Keycloak and Auth0 render organizations), with no members."""
        with self.lock:
            o = Organization(org_id or str(uuid.uuid4()), name, display_name, external_id, _ms(now or utcnow()))
            self.organizations[o.id] = o
            self._bump(structure=True)
            return o

    def set_org_member(self, org_id: str, user_id: str, role_names: list[str] | tuple[str, ...] = ()) -> None:
        """Make the user a member of the organization with exactly these roles (by name): added
        when not a member yet, the roles replaced otherwise."""
        with self.lock:
            o = self.organizations[org_id]
            rids = [self.role_by_name(n).id for n in role_names]
            for m in o.members:
                if m.user_id == user_id:
                    m.role_ids = rids
                    break
            else:
                o.members.append(OrgMember(user_id, rids))
            o.version += 1
            self._bump(structure=True)

    def remove_org_member(self, org_id: str, user_id: str) -> None:
        with self.lock:
            o = self.organizations[org_id]
            before = len(o.members)
            o.members = [m for m in o.members if m.user_id != user_id]
            if len(o.members) != before:
                o.version += 1
                self._bump(structure=True)


# --------------------------------------------------------------------------- generator

_FIRST = [
    ("Maria", "maria"), ("James", "james"), ("Aisha", "aisha"), ("Wei", "wei"), ("Olga", "olga"),
    ("José", "jose"), ("Zoë", "zoe"), ("Łukasz", "lukasz"), ("Søren", "soren"), ("Ngọc", "ngoc"),
    ("Fatima", "fatima"), ("Kenji", "kenji"), ("Priya", "priya"), ("Liam", "liam"), ("Chloé", "chloe"),
    ("Björn", "bjorn"), ("Ana", "ana"), ("Mohammed", "mohammed"), ("Emily", "emily"), ("Noah", "noah"),
    ("Sofía", "sofia"), ("Jürgen", "jurgen"), ("Ava", "ava"), ("Ethan", "ethan"), ("Mei", "mei"),
    ("Oluwaseun", "oluwaseun"), ("Siobhán", "siobhan"), ("Dmitri", "dmitri"), ("Isabella", "isabella"),
    ("Lucas", "lucas"), ("Hana", "hana"), ("Mateo", "mateo"), ("Grace", "grace"), ("Ravi", "ravi"),
    ("Élodie", "elodie"), ("Tomás", "tomas"), ("Ingrid", "ingrid"), ("Yusuf", "yusuf"), ("Camila", "camila"),
    ("Daniel", "daniel"), ("Ji-woo", "jiwoo"), ("Nadia", "nadia"), ("Omar", "omar"), ("Leah", "leah"),
    ("Ахмед", "akhmed"), ("明", "ming"), ("Ren", "ren"), ("Amara", "amara"), ("Samuel", "samuel"),
]
_LAST = [
    ("Smith", "smith"), ("García", "garcia"), ("Nguyễn", "nguyen"), ("Müller", "muller"), ("O'Brien", "obrien"),
    ("Kowalski", "kowalski"), ("Johnson", "johnson"), ("Okafor", "okafor"), ("Tanaka", "tanaka"), ("Patel", "patel"),
    ("Ødegård", "odegard"), ("Dubois", "dubois"), ("Rossi", "rossi"), ("Andersson", "andersson"), ("Kim", "kim"),
    ("Hernández", "hernandez"), ("Williams", "williams"), ("Schröder", "schroder"), ("Brown", "brown"),
    ("Silva", "silva"),
    ("D'Angelo", "dangelo"), ("Ivanova", "ivanova"), ("Chen", "chen"), ("Lopez", "lopez"), ("Núñez", "nunez"),
    ("Wilson", "wilson"), ("Haddad", "haddad"), ("Ólafsdóttir", "olafsdottir"), ("Davis", "davis"),
    ("Martin", "martin"),
    ("Mbeki", "mbeki"), ("van der Berg", "vanderberg"), ("Taylor", "taylor"), ("Moreau", "moreau"), ("Lee", "lee"),
    ("Yılmaz", "yilmaz"), ("Novák", "novak"), ("Clark", "clark"), ("Santos", "santos"), ("Thomas", "thomas"),
    ("Смирнов", "smirnov"), ("王", "wang"), ("Moore", "moore"), ("Zhang", "zhang"), ("Jackson", "jackson"),
]
_DOMAINS = ("example.com", "example.org", "clinic.example", "health.example.net", "lab.example.com")
_STATES = ("AK", "AZ", "CA", "CO", "DC", "FL", "MD", "MN", "NY", "TX", "WA", "PR", "GA", "IL", "OR")
_ORG_WORDS_A = ("Harbor", "Summit", "Riverside", "Prairie", "Lakeview", "Cedar", "Sunrise", "Granite",
                "Pioneer", "Bayou", "Mesa", "Evergreen", "Liberty", "Canyon", "Northstar", "Willow")
_ORG_WORDS_B = ("Health", "Clinic", "Labs", "Testing", "Medical", "Community Care", "Pharmacy", "Schools",
                "Urgent Care", "Diagnostics")
_UNICODE_ORG_NAMES = ("Clínica São José", "Gesundheitszentrum Müller", "Centre de Santé Éloïse",
                      "Zdrowie Łódź", "Kōkua Health", "Salud Niño & Familia")
_DEPARTMENTS = ("Lab", "Front Desk", "Nursing", "Administration", "Recherche & Développement", "IT",
                "Pharmacy", "Quality", "Öffentlichkeitsarbeit")

_STATUS_THRESHOLDS = (
    (0.80, "ACTIVE"),
    (0.83, "STAGED"),
    (0.87, "PROVISIONED"),
    (0.92, "SUSPENDED"),
    (0.95, "DEPROVISIONED"),
    (0.97, "LOCKED_OUT"),
    (0.99, "PASSWORD_EXPIRED"),
    (1.01, "RECOVERY"),
)
_PRIMARY_ROLE_THRESHOLDS = ((0.50, "USER"), (0.70, "ENTRY_ONLY"), (0.85, "ADMIN"), (1.01, "ALL_FACILITIES"))

_THREE_YEARS = 3 * 365 * 86400.0
_ROLE_DESCRIPTIONS = {
    "NO_ACCESS": "Member of the organization without permissions",
    "ADMIN": "Organization administrator (all facilities)",
    "USER": "Standard user",
    "ENTRY_ONLY": "Can enter test results only",
    "ALL_FACILITIES": "Access to all facilities of the organization",
    SITE_ADMIN_ROLE: "Site administrator",
}


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _uid(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from `rng`, as text."""
    h = "%032x" % ((rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _slug(text: str) -> str:
    out: list[str] = []
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    for ch in ascii_text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def make_tenant(
    users: int = 3000,
    groups: int = 40,
    seed: int = 7,
    *,
    now: datetime | None = None,
    env: str = "PROD",
) -> Tenant:
    """Build a deterministic tenant with exactly `users` users and `groups` groups.

    Timestamps fall in the three years before `now` (a fixed reference date by default, so the
    result never depends on the clock)."""
    if users < 0 or groups < 0:
        raise ValueError("users and groups must be >= 0")
    # Hundreds of thousands of small objects: the cyclic collector would rescan them over and
    # over while they are being created (none of them form cycles worth collecting here).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _make_tenant(users, groups, seed, now, env)
    finally:
        if gc_was_enabled:
            gc.enable()


def _make_tenant(users: int, groups: int, seed: int, now: datetime | None, env: str) -> Tenant:
    rng = random.Random(seed)
    rnd = rng.random
    now = _ms(now or REFERENCE_NOW)
    now_s = now.timestamp()
    t = Tenant(seed=seed, now=now, env=env)
    t.custom_attributes = {"department": "string", "employeeNumber": "string", "isContractor": "boolean"}

    def ts(seconds: float) -> datetime:
        return datetime.fromtimestamp(int(seconds * 1000) / 1000.0, UTC)

    # ---- roles
    for name in ORG_ROLE_NAMES + (SITE_ADMIN_ROLE,):
        r = Role(_uid(rng), name, _ROLE_DESCRIPTIONS[name])
        t.roles[r.id] = r
    role_id = {r.name: r.id for r in t.roles.values()}

    # ---- group budget
    malformed_n = min(6, max(0, (groups - 1) // 6))
    plain_n = min(4, max(0, (groups - 1 - malformed_n) // 8))
    org_budget = max(0, groups - 1 - malformed_n - plain_n) if groups else 0
    site_n = 1 if groups else 0

    # organizations: 5 role groups + 1..4 facility groups each
    org_specs: list[tuple[list[str], int]] = []
    remaining = org_budget
    while remaining >= 6:
        f = min(rng.randint(1, 4), remaining - 5)
        org_specs.append((list(ORG_ROLE_NAMES), f))
        remaining -= 5 + f
    if remaining:
        if org_specs:
            roles_, f = org_specs[-1]
            org_specs[-1] = (roles_, f + remaining)
        else:
            org_specs.append((list(ORG_ROLE_NAMES[:remaining]), 0))

    def group_times() -> tuple[datetime, datetime, datetime]:
        c = now_s - _THREE_YEARS * (0.34 + 0.66 * rnd())
        lu = c + (now_s - c) * rnd() * 0.5
        return ts(c), ts(lu), ts(lu)

    def new_group(name: str, description: str, kind: str, **kw: Any) -> Group:
        c, lu, lmu = group_times()
        g = Group(_uid(rng), name, description, c, lu, lmu, kind=kind, **kw)
        t.groups[g.id] = g
        t.memberships[g.id] = []
        return g

    site_group = new_group(f"SR-{env}-ADMINS", "SimpleReport site administrators", "site_admin") if site_n else None

    orgs: list[Organization] = []
    org_role_groups: list[dict[str, Group]] = []
    org_facility_groups: list[list[Group]] = []
    used_names: set[str] = set()
    for i, (role_names, n_fac) in enumerate(org_specs):
        if i % 5 == 3:
            display = _UNICODE_ORG_NAMES[(i // 5) % len(_UNICODE_ORG_NAMES)]
        else:
            display = f"{rng.choice(_ORG_WORDS_A)} {rng.choice(_ORG_WORDS_B)}"
        base = _slug(display)[:36] or "org"
        name = base
        k = 2
        while name in used_names:
            name = f"{base}-{k}"
            k += 1
        used_names.add(name)
        ext = f"{rng.choice(_STATES)}-{_slug(display).title()}-{_uid(rng)}"
        o = Organization(_uid(rng), name, display, ext, ts(now_s - _THREE_YEARS * (0.5 + 0.5 * rnd())))
        t.organizations[o.id] = o
        orgs.append(o)
        rgs: dict[str, Group] = {}
        for rn in role_names:
            rgs[rn] = new_group(f"SR-{env}-TENANT:{ext}:{rn}", f"{display} - {rn.replace('_', ' ').title()}",
                                "role", org_id=o.id, role_name=rn)
        fgs: list[Group] = []
        for _ in range(n_fac):
            fac = _uid(rng)
            o.facility_ids.append(fac)
            fgs.append(new_group(f"SR-{env}-TENANT:{ext}:FACILITY_ACCESS:{fac}", f"{display} - facility access",
                                 "facility", org_id=o.id, facility_id=fac))
        org_role_groups.append(rgs)
        org_facility_groups.append(fgs)

    ext0 = orgs[0].external_id if orgs else f"MD-Unknown-Org-{_uid(rng)}"
    malformed_names = [
        (f"SR-{env}-TENANT:{ext0}:SUPERUSER", "Unknown role suffix"),
        (f"SR-{env}-TENANT:{ext0}:FACILITY_ACCESS:not-a-uuid", "Facility id is not a UUID"),
        (f"SR-{env}-TENANT:", "Truncated tenant group name"),
        (f"sr-{env.lower()}-tenant:{ext0.lower()}:admin", "Lower-case group name"),
        (f"SR-DEV-TENANT:{ext0}:USER", "Group of another environment"),
        (f"SR-{env}-TENANT:TX-Deleted-Org-{_uid(rng)}:ADMIN", "Organization that no longer exists"),
    ][:malformed_n]
    malformed_groups = [new_group(n, d, "malformed") for n, d in malformed_names]

    plain_groups: list[Group] = []
    if plain_n >= 1:
        departments = new_group("Departments", "Parent of department groups", "plain")
        plain_groups.append(departments)
        if plain_n >= 2:
            plain_groups.append(new_group("Engineering", "Engineering department", "plain", parent_id=departments.id))
        if plain_n >= 3:
            plain_groups.append(new_group("Ops/On-Call", "Operations on-call rotation", "plain",
                                          parent_id=departments.id))
        if plain_n >= 4:
            plain_groups.append(new_group("Équipe Support ✓", "Support team (unicode name)", "plain"))

    # ---- users
    n_first, n_last, n_dom = len(_FIRST), len(_LAST), len(_DOMAINS)
    n_dept = len(_DEPARTMENTS)
    user_list: list[User] = []
    for i in range(users):
        uid = _uid(rng)
        fn, fa = _FIRST[int(rnd() * n_first)]
        ln, la = _LAST[int(rnd() * n_last)]
        dom = _DOMAINS[int(rnd() * n_dom)]
        r = rnd()
        status = "RECOVERY"
        for th, st in _STATUS_THRESHOLDS:
            if r < th:
                status = st
                break
        login = f"{fa}.{la}{i}@{dom}"
        er = rnd()
        if er < 0.015:
            email = None
            login = f"{fa}{la[:1]}{i}"
        elif er < 0.045:
            email = f"{fa}{i}@{_DOMAINS[(int(rnd() * n_dom) + 1) % n_dom]}"
        elif er < 0.065:
            email = f"{fn[:1].upper()}{fa[1:]}.{la.title()}{i}@{dom.title()}"
        else:
            email = login
        created_s = now_s - _THREE_YEARS * rnd()
        updated_s = created_s + (now_s - created_s) * rnd()
        if status in ("STAGED", "PROVISIONED"):
            last_login = None
            verified = False
        else:
            last_login = ts(created_s + (now_s - created_s) * rnd())
            verified = email is not None and rnd() < 0.96
        custom: dict[str, Any] = {}
        if rnd() < 0.9:
            custom["department"] = _DEPARTMENTS[int(rnd() * n_dept)]
        if rnd() < 0.8:
            custom["employeeNumber"] = str(100000 + int(rnd() * 900000))
        if rnd() < 0.3:
            custom["isContractor"] = rnd() < 0.5
        u = User(uid, login, email, verified, fn, ln, status, ts(created_s), ts(updated_s), last_login, custom)
        user_list.append(u)

    # guaranteed awkward users at fixed positions (when the tenant is big enough)
    def override(idx: int, **kw: Any) -> None:
        if idx < len(user_list):
            u = user_list[idx]
            for k, v in kw.items():
                setattr(u, k, v)

    override(0, first_name="Zoë", last_name="Ødegård-Nguyễn", status="ACTIVE")
    override(1, email=None, email_verified=False, login="no.email.user1", status="ACTIVE")
    override(3, first_name="Łukasz", last_name="Wiśniewski 🚀", status="ACTIVE")
    override(4, status="DEPROVISIONED")
    override(5, status="SUSPENDED")
    override(6, first_name="明", last_name="王", status="LOCKED_OUT")
    if len(user_list) > 8 and user_list[0].email:
        e0 = user_list[0].email
        override(8, email=e0.upper(), status="ACTIVE")  # same address as user 0, other case
    for u in user_list:
        t.users[u.id] = u

    # ---- memberships
    ms = t.memberships
    n_orgs = len(orgs)

    def join(gid: str, uid: str, mine: set[str]) -> None:
        if gid not in mine:
            mine.add(gid)
            ms[gid].append(uid)

    def join_org(idx: int, uid: str, mine: set[str]) -> None:
        rgs = org_role_groups[idx]
        fgs = org_facility_groups[idx]
        if not rgs:
            return
        r = rnd()
        primary = "ALL_FACILITIES"
        for th, rn in _PRIMARY_ROLE_THRESHOLDS:
            if r < th:
                primary = rn
                break
        if r > 0.97 and "NO_ACCESS" in rgs:
            join(rgs["NO_ACCESS"].id, uid, mine)  # only the default group
            return
        if primary not in rgs:
            primary = next(iter(rgs))
        join(rgs[primary].id, uid, mine)
        if "NO_ACCESS" in rgs and rnd() < 0.7:
            join(rgs["NO_ACCESS"].id, uid, mine)
        if rnd() < 0.1:
            second = list(rgs)[int(rnd() * len(rgs))]
            join(rgs[second].id, uid, mine)
        if fgs:
            if primary in ("USER", "ENTRY_ONLY"):
                fr = rnd()
                k = 0 if fr < 0.15 else 1 if fr < 0.65 else 2 if fr < 0.9 else 3
            else:
                k = 1 if rnd() < 0.1 else 0
            for _ in range(k):
                join(fgs[int(rnd() * len(fgs))].id, uid, mine)

    all_gids = list(t.groups)
    for i, u in enumerate(user_list):
        mine: set[str] = set()
        uid = u.id
        if i == 2:
            continue  # guaranteed: a user in no group
        if i == 3:
            for gid in all_gids:  # guaranteed: a user in every group
                join(gid, uid, mine)
            continue
        r = rnd()
        if r < 0.04 or not all_gids:
            continue
        if n_orgs:
            if r < 0.06:
                for _ in range(2 + int(rnd() * 3)):
                    join_org(int(n_orgs * rnd()), uid, mine)
            else:
                join_org(int(n_orgs * rnd() ** 2), uid, mine)
            if rnd() < 0.003 and n_orgs > 1:
                other = org_facility_groups[int(n_orgs * rnd())]
                if other:
                    join(other[int(rnd() * len(other))].id, uid, mine)  # facility of another org
        if site_group is not None and (rnd() < 0.005 or i == 7):
            join(site_group.id, uid, mine)
        if malformed_groups and rnd() < 0.015:
            join(malformed_groups[int(rnd() * len(malformed_groups))].id, uid, mine)
        if plain_groups and rnd() < 0.05:
            join(plain_groups[int(rnd() * len(plain_groups))].id, uid, mine)

    # membership timestamps: the last change is after the group's last update
    for g in t.groups.values():
        if ms[g.id]:
            lu = g.last_updated.timestamp()
            g.last_membership_updated = ts(lu + (now_s - lu) * rnd())

    # ---- organization members and user roles (derived from the groups)
    # Role groups are visited in role order, so each member's role list comes out ordered; a
    # user's tenant-wide roles are kept as a bit mask (bit = position in t.roles) until the end.
    position = {u.id: i for i, u in enumerate(user_list)}
    role_bit = {rid: 1 << k for k, rid in enumerate(t.roles)}
    user_mask: dict[str, int] = {}
    for o, rgs, fgs in zip(orgs, org_role_groups, org_facility_groups, strict=True):
        member_roles: dict[str, list[str]] = {}
        for rn, g in rgs.items():
            rid = role_id[rn]
            bit = role_bit[rid]
            for uid in ms[g.id]:
                lst = member_roles.get(uid)
                if lst is None:
                    member_roles[uid] = [rid]
                elif rid not in lst:
                    lst.append(rid)
                user_mask[uid] = user_mask.get(uid, 0) | bit
        for g in fgs:
            for uid in ms[g.id]:
                member_roles.setdefault(uid, [])
        o.members = [OrgMember(uid, member_roles[uid]) for uid in sorted(member_roles, key=position.__getitem__)]
    # the "organization that no longer exists" and cross-org facilities stay visible only in groups
    if site_group is not None:
        bit = role_bit[role_id[SITE_ADMIN_ROLE]]
        for uid in ms[site_group.id]:
            user_mask[uid] = user_mask.get(uid, 0) | bit
    all_role_ids = list(t.roles)
    decoded: dict[int, list[str]] = {}
    for u in user_list:
        mask = user_mask.get(u.id)
        if mask:
            rids = decoded.get(mask)
            if rids is None:
                rids = decoded[mask] = [rid for k, rid in enumerate(all_role_ids) if mask >> k & 1]
            t.user_roles[u.id] = list(rids)

    t._bump(structure=True)
    return t

