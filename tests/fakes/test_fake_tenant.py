"""The synthetic tenant is deterministic and holds the awkward cases."""

from __future__ import annotations

from tests.fakes.tenant import STATUSES, make_tenant


def test_tenant_is_deterministic_and_awkward() -> None:
    a = make_tenant(users=400, groups=40, seed=11)
    b = make_tenant(users=400, groups=40, seed=11)
    assert [(u.id, u.login, u.email, u.status, u.last_updated) for u in a.users.values()] == \
        [(u.id, u.login, u.email, u.status, u.last_updated) for u in b.users.values()]
    assert a.memberships == b.memberships
    assert len(a.users) == 400 and len(a.groups) == 40
    users = list(a.users.values())
    assert any(not u.first_name.isascii() or not u.last_name.isascii() for u in users)
    assert any(u.email is None for u in users)
    assert any(not a.groups_of(u.id) for u in users)
    assert len(a.groups_of(users[3].id)) == 40  # one user in every group
    assert {u.status for u in users} == set(STATUSES)
    emails = [u.email.lower() for u in users if u.email]
    assert len(emails) != len(set(emails))  # the same address twice, in another case
    names = [g.name for g in a.groups.values()]
    assert "SR-PROD-ADMINS" in names
    assert any(n.startswith("SR-PROD-TENANT:") and n.endswith(":ADMIN") for n in names)
    assert any(":FACILITY_ACCESS:" in n for n in names)
    assert any(g.kind == "malformed" for g in a.groups.values())
    assert any(g.parent_id for g in a.groups.values())
    assert a.organizations and all(o.members for o in a.organizations.values())
    assert make_tenant(users=401, groups=40, seed=11).summary() != a.summary()
