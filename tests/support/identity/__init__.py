"""The identity tests' tenant, databases and probes, one module a concern; every name is
importable from here.

- cast: `build_tenant(provider)`, a small tenant written out by hand with every edge case of the
  identity data contract and of the SimpleReport ticket (CAST), plus FILLER users so that a sync
  walks several batches; `start(provider)`, a fake over it. Neutral user ids are readable
  (`admin-a`, `dup-1`, ...); the fakes derive their own ids from them.
- legacy: `insert_legacy_rows(engine, provider, fake)`, the application's users before the identity
  revision, as `user_settings` rows (LEGACY) that revision 0004 turns into users (emails in other
  cases and with spaces, duplicates, app-only users; for Keycloak, keycloak_user_id = the Keycloak
  user id); `insert_app_org(engine)`: an org the application already has, with facilities and
  memberships.
- probes: `Ids` (neutral id <-> the provider's external id, for users and orgs); `state(engine,
  ids)`, what the identity step left per IdP account, id-free; `reports(engine, ids)`;
  `fingerprint(engine)` (checksums of every table the step touches);
  `rows(engine, sql)`; `linked_user`, `legacy_user`, `org_id` (the app's ids of the IdP's).
- run: `export(url, provider, fake)`, `cli(url, "sync", ...)` (`orgmig` in this process),
  `alembic(url, ...)` and `alembic_process(url, ...)` (alembic in a process of its own);
  `downgrade_restores(url, engine, before)`.
- databases (registered in conftest.py): the fixtures `identity_databases` (template databases per
  provider and stage, copied per test) and `identity_fake` (a started fake over a fresh tenant).
"""

from tests.support.identity.cast import (
    APP_ORG_B,
    CAST,
    CAST_BY_KEY,
    ENV,
    FAC_A1,
    FAC_A2,
    FAC_B1,
    FAC_B2,
    FAC_X,
    FAKE_OPTIONS,
    FAKES,
    FILLER,
    FILLER_MATCHED,
    FILLERS,
    KEYCLOAK_ORG_PEOPLE,
    MALFORMED,
    NOW,
    ORG_A,
    ORG_B,
    ORG_C,
    ORG_D,
    OTHER_GROUPS,
    ROLE_MAP,
    SR_GROUPS,
    Person,
    build_tenant,
    filler,
    group_name,
    start,
)
from tests.support.identity.databases import Databases, synced_with_fake
from tests.support.identity.legacy import APP_ORG_B_MEMBERS, LEGACY, insert_app_org, insert_legacy_rows, legacy_kc_id
from tests.support.identity.probes import (
    FACILITY_NAMES,
    TABLES,
    Account,
    Ids,
    fingerprint,
    legacy_user,
    linked_user,
    org_id,
    reports,
    rows,
    state,
)
from tests.support.identity.run import alembic, alembic_process, cli, downgrade_restores, export

__all__ = [
    "APP_ORG_B", "APP_ORG_B_MEMBERS", "CAST", "CAST_BY_KEY", "ENV", "FACILITY_NAMES", "FAC_A1", "FAC_A2", "FAC_B1",
    "FAC_B2", "FAC_X", "FAKES", "FAKE_OPTIONS", "FILLER", "FILLERS", "FILLER_MATCHED", "KEYCLOAK_ORG_PEOPLE",
    "LEGACY", "MALFORMED", "NOW", "ORG_A", "ORG_B", "ORG_C", "ORG_D", "OTHER_GROUPS", "ROLE_MAP", "SR_GROUPS",
    "TABLES", "Account", "Databases", "Ids", "Person", "alembic", "alembic_process", "build_tenant",
    "cli", "downgrade_restores", "export", "filler", "fingerprint", "group_name", "insert_app_org",
    "insert_legacy_rows", "legacy_kc_id", "legacy_user", "linked_user", "org_id", "reports", "rows", "start",
    "state", "synced_with_fake",
]
