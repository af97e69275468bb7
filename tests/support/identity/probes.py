"""What the identity step left, id-free: `Ids` (neutral id <-> the provider's external id, for users
and orgs), `state(engine, ids)` per IdP account, `reports(engine, ids)`, `fingerprint(engine)`
(checksums of every table the step touches), `rows(engine, sql)`, and the app's ids of a linked
account (`linked_user`), of a legacy row's user (`legacy_user`) and of an IdP org (`org_id`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from tests.support.db import scalar, table_md5
from tests.support.identity.cast import FAC_A1, FAC_A2, FAC_B1, FAC_B2, FAC_X, ORG_A, ORG_B, ORG_C, ORG_D
from tests.support.identity.legacy import LEGACY, legacy_kc_id


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
    "orgmig_identity_undo": "table_name, row_key", "orgmig_identity_group": "provider, kind, external_id",
    "orgmig_created_row": "step, table_name, row_key",
}
REPORTS = """(SELECT step, source_table, source_id, reason, migrated, detail FROM orgmig_report)"""


def fingerprint(engine: Engine) -> dict[str, tuple]:
    """(count, md5) of every table the step touches (the reports without their ids and run ids)."""
    found = {t: table_md5(engine, t, order) for t, order in TABLES.items()}
    found["orgmig_report"] = table_md5(engine, REPORTS, "step, source_table, source_id, reason")
    return found


def linked_user(engine: Engine, ids: Ids, key: str) -> int:
    """The app user linked to the provider's account of the person `key`."""
    return scalar(engine, "SELECT user_id FROM user_identity WHERE provider = :p AND external_id = :x",
                  p=ids.provider, x=ids.user[key])


def legacy_user(engine: Engine, ids: Ids, label: str) -> int:
    """The id of the app user made from the legacy row LEGACY names `label`."""
    kc = next(k for k, v in ids.legacy.items() if v == label)
    return scalar(engine, 'SELECT id FROM "user" WHERE keycloak_user_id = :k', k=kc)


def org_id(engine: Engine, ids: Ids, letter: str) -> str:
    """The app's id of the org the IdP names `letter` (A, B, C, D)."""
    return str(scalar(engine, "SELECT id FROM org WHERE external_id = :x", x=ids.org[letter]))
