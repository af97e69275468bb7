"""`make_tenant(users, groups, seed)`: the same synthetic tenant for the same arguments, the awkward
cases included."""

from __future__ import annotations

import gc
import random
import unicodedata
from datetime import UTC, datetime
from typing import Any

from .records import ORG_ROLE_NAMES, REFERENCE_NOW, SITE_ADMIN_ROLE, Group, Organization, OrgMember, Role, User, _ms
from .state import Tenant
from .vocabulary import (
    _DEPARTMENTS,
    _DOMAINS,
    _FIRST,
    _LAST,
    _ORG_WORDS_A,
    _ORG_WORDS_B,
    _PRIMARY_ROLE_THRESHOLDS,
    _ROLE_DESCRIPTIONS,
    _STATES,
    _STATUS_THRESHOLDS,
    _THREE_YEARS,
    _UNICODE_ORG_NAMES,
    _UUID_CLEAR,
    _UUID_SET,
)


def _pick(r: float, thresholds: tuple[tuple[float, str], ...] | list[tuple[float, str]], default: str) -> str:
    """The value of the first cumulative threshold above `r`, else `default`."""
    return next((value for threshold, value in thresholds if r < threshold), default)


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
        status = _pick(rnd(), _STATUS_THRESHOLDS, "RECOVERY")
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
        primary = _pick(r, _PRIMARY_ROLE_THRESHOLDS, "ALL_FACILITIES")
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
