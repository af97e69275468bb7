"""Auth0 ids, the users' order and the documents of users, roles and organizations, cached until the
tenant changes."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from ..base import derived_hex, iso
from ..tenant import Organization, User
from .scopes import DB_CONNECTION, SOCIAL_CONNECTION


class Auth0Index:
    """The user index and the documents the listings page over."""

    def _idx(self) -> list[str]:
        return self._index.get()

    def _build_index(self) -> list[str]:
        """Run by `TenantIndex` under the tenant's lock when its structure changed: the users in
        Auth0's default order (`created_at`, then `user_id`), and `_user_by_aid` beside them."""
        pairs = [(self.auth0_user_id(uid), u) for uid, u in self.tenant.users.items()]
        self._user_by_aid = dict(pairs)
        return [aid for aid, _ in sorted(pairs, key=lambda p: (p[1].created, p[0]))]

    def _doc(self, aid: str) -> dict[str, Any]:
        u = self._user_by_aid[aid]
        return self._docs.get(aid, u.version, lambda: self._user_doc(aid, u))

    def _user_doc(self, aid: str, u: User) -> dict[str, Any]:
        provider, _, ident = aid.partition("|")
        social = provider != "auth0"
        h = derived_hex("auth0-user-extra", u.id, length=8)
        doc: dict[str, Any] = {"created_at": iso(u.created)}
        if u.email:
            doc["email"] = u.email
            doc["email_verified"] = bool(u.email_verified) or social
        doc["family_name"] = u.last_name
        doc["given_name"] = u.first_name
        doc["identities"] = [{
            "connection": SOCIAL_CONNECTION if social else DB_CONNECTION,
            "user_id": ident,
            "provider": provider,
            "isSocial": social,
        }]
        doc["name"] = u.display_name
        local = (u.email or u.login).split("@")[0]
        doc["nickname"] = local
        initials = "".join(p[:1] for p in (u.first_name, u.last_name)).lower() or "u"
        doc["picture"] = (f"https://s.gravatar.com/avatar/{hashlib.md5((u.email or u.login).encode()).hexdigest()}"
                          f"?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{quote(initials)}.png")
        doc["updated_at"] = iso(u.last_updated)
        doc["user_id"] = aid
        if not social and (not u.email or int(h[:2], 16) % 10 < 3):
            doc["username"] = u.login.split("@")[0]
        if u.custom:
            doc["app_metadata"] = dict(u.custom)
        if aid in self._user_metadata:
            if self._user_metadata[aid]:
                doc["user_metadata"] = dict(self._user_metadata[aid])
        elif int(h[2:4], 16) % 4 == 0:
            doc["user_metadata"] = {"locale": "fr-CA" if int(h[4:6], 16) % 2 else "en-US"}
        if u.last_login is not None:
            doc["last_ip"] = f"198.51.100.{int(h[6:8], 16) % 250 + 1}"
            doc["last_login"] = iso(u.last_login)
            doc["logins_count"] = 1 + int(h[:4], 16) % 400
        if u.status in ("SUSPENDED", "DEPROVISIONED"):
            doc["blocked"] = True
        return doc

    def _sorted_roles(self) -> list[Any]:
        return sorted(self.tenant.roles.values(), key=lambda r: self.role_id(r.id))

    def _role_by_id(self, rid: str) -> Any:
        for r in self.tenant.roles.values():
            if self.role_id(r.id) == rid:
                return r
        return None

    def _role_doc(self, neutral_role_id: str) -> dict[str, Any]:
        r = self.tenant.roles[neutral_role_id]
        return {"id": self.role_id(r.id), "name": r.name, "description": r.description}

    def _role_members(self, rid: str) -> list[str]:
        r = self._role_by_id(rid)
        if r is None:
            raise KeyError(rid)
        self._idx()
        return self._lists.get(("role-members", rid), self.tenant.version, lambda: sorted(
            self.auth0_user_id(uid) for uid, rids in self.tenant.user_roles.items()
            if r.id in rids and uid in self.tenant.users))

    def _sorted_orgs(self) -> list[Organization]:
        return sorted(self.tenant.organizations.values(), key=lambda o: self.org_id(o.id))

    def _org_by_id(self, oid: str) -> Organization | None:
        for o in self.tenant.organizations.values():
            if self.org_id(o.id) == oid or o.name == oid:
                return o
        return None

    def _org_doc(self, o: Organization) -> dict[str, Any]:
        return {"id": self.org_id(o.id), "name": o.name, "display_name": o.display_name,
                "metadata": {"external_id": o.external_id}}

    def _members_of(self, o: Organization) -> list[tuple[str, list[dict[str, str]]]]:
        self._idx()
        t = self.tenant

        def build() -> list[tuple[str, list[dict[str, str]]]]:
            role_ref = {rid: {"id": self.role_id(rid), "name": r.name} for rid, r in t.roles.items()}
            out = [(self.auth0_user_id(m.user_id), [dict(role_ref[rid]) for rid in m.role_ids])
                   for m in o.members if m.user_id in t.users]
            out.sort(key=lambda p: p[0])
            return out

        return self._lists.get(("org-members", o.id), self.tenant.version, build)

    def _member_doc(self, aid: str, roles: list[dict[str, str]] | None) -> dict[str, Any]:
        d = self._doc(aid)
        doc: dict[str, Any] = {"user_id": aid}
        if "email" in d:
            doc["email"] = d["email"]
        doc["picture"] = d["picture"]
        doc["name"] = d["name"]
        if roles is not None:
            doc["roles"] = roles
        return doc
